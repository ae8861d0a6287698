# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.glovita-installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/glovita_train --data.dataset digits --model.encoder.type resnet18 --model.encoder.no_pretrained \
		--training.epochs 12

test: $(STAMP)
	$(BIN)/ruff check src tests bench docs
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs
	$(BIN)/ruff format --check src tests bench docs

bench: $(STAMP)
	$(BIN)/python bench/bench_train.py --epochs 5 --rounds 4

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
