"""The model catalogue: which models the install can answer with, and what each file or server says about it."""
