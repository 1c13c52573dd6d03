# The AWS side: template and state machine checks, and `sam build`. Included from the Makefile.
#
# The tools live in their own virtualenvs under .tools/, never in .venv: aws-sam-cli pins
# boto3/pydantic ranges that would fight the project's dev dependencies, and checkov's pins
# fight aws-sam-cli's. Versions: tools/requirements*.txt, every transitive one frozen in
# tools/constraints*.txt.
TOOLS := .tools
TOOLS_BIN := $(TOOLS)/bin
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV_VENV := $(TOOLS)/checkov
LAMBDA_PYTHON := 3.12
ASL_OUT := .aws-sam/asl
BUILD_DIR := .aws-sam/build
CHECKOV_LIVE := .aws-sam/checkov/template.live.yaml
PACKAGE_LIMIT_MB := 100

# No telemetry, and a region for tools that want one (nothing here calls AWS).
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: tools validate build checkov

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): tools/requirements.txt tools/constraints.txt tools/requirements-checkov.txt tools/constraints-checkov.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS_BIN)/python -m pip install --quiet --disable-pip-version-check -r tools/requirements.txt -c tools/constraints.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt -c tools/constraints-checkov.txt
	ln -sf ../checkov/bin/checkov $(TOOLS_BIN)/checkov
	touch $(TOOLS_STAMP)

# sam validate --lint runs cfn-lint on the transformed template; cfn-lint does not look inside
# state machine definitions, so statelint checks them with their ${...} filled in.
validate: $(TOOLS_STAMP)
	$(TOOLS_BIN)/sam validate --lint --template template.yaml
	rm -rf $(ASL_OUT)
	$(TOOLS_BIN)/python tools/render_asl.py --template template.yaml --out $(ASL_OUT) >/dev/null
	$(TOOLS_BIN)/statelint $(ASL_OUT)/*.asl.json
	@echo "validate: template and $$(ls $(ASL_OUT)/*.asl.json | wc -l) state machines OK"

# sam build needs the runtime's Python (3.12) on PATH: tools/find-python.sh finds one on PATH
# or in pyenv. --build-in-source lets the layers' Makefiles reach src/ and layers/shared.mk.
build: $(TOOLS_STAMP)
	@py_dir="$$(tools/find-python.sh $(LAMBDA_PYTHON))" || exit 1; \
	echo "build: python$(LAMBDA_PYTHON) from $$py_dir"; \
	PATH="$$py_dir:$$PATH" $(TOOLS_BIN)/sam build --template template.yaml --build-in-source --parallel
	$(TOOLS_BIN)/python tools/package_sizes.py --build-dir $(BUILD_DIR) --limit-mb $(PACKAGE_LIMIT_MB)
	@py_dir="$$(tools/find-python.sh $(LAMBDA_PYTHON))" || exit 1; \
	$(TOOLS_BIN)/python tools/check_imports.py --build-dir $(BUILD_DIR) --python "$$py_dir/python$(LAMBDA_PYTHON)"

# Twice: with the template's defaults (paper), and with live-mode defaults, under which the
# exchange secret, its KMS key and its resource policy exist (checkov resolves a resource's
# Condition with the parameters' defaults; paper mode would never scan them).
checkov: $(TOOLS_STAMP)
	$(TOOLS_BIN)/checkov --quiet --compact --framework cloudformation --file template.yaml
	$(TOOLS_BIN)/python tools/render_mode.py --template template.yaml --mode live --out $(CHECKOV_LIVE) >/dev/null
	$(TOOLS_BIN)/checkov --quiet --compact --framework cloudformation --file $(CHECKOV_LIVE)
