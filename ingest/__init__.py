"""From folders of files to chunks in the index."""
