# Recipes shared by the layers' Makefiles (sam build, BuildMethod: makefile, BuildInSource).
# Everything lands in $(ARTIFACTS_DIR)/python, compiled to bytecode for the runtime's Python:
# /opt is read-only on Lambda, so a layer without .pyc files recompiles on every cold start.
PYTHON ?= python3.12
LAYER_DIR = $(ARTIFACTS_DIR)/python
# Every requirements*.txt here is a lock written by `make lock` from requirements*.in: exact
# versions with their hashes, and pip refuses anything unpinned or unhashed.
PIP = $(PYTHON) -m pip install --quiet --no-compile --disable-pip-version-check --require-hashes --target "$(LAYER_DIR)"

# The Lambda functions run on Linux x86_64: pip installs the build host's wheels, and the core
# layer compiles the indicator kernels with the host's cc, so any other host builds the wrong
# layer. Checked first by every layer.
define check_host
	@test "$$(uname -sm)" = "Linux x86_64" || { \
	  echo "layers: the build host is $$(uname -sm), not Linux x86_64 (the Lambda functions' platform); build the layers on a Linux x86_64 machine" >&2; exit 1; }
endef

define check_python
	$(check_host)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || { \
	  echo "layers: $(PYTHON) is not Python 3.12 (the Lambda runtime); see mk/aws.mk" >&2; exit 1; }
endef

define compile
	find "$(LAYER_DIR)" -depth -type d -name __pycache__ -exec rm -rf {} +
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(LAYER_DIR)" >/dev/null
endef
