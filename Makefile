# make demo: train on the synthetic sample corpus and tag a few sentences. The model (runs/demo) is
#   trained again only when experiments/demo.json or data/sample change: then the old folder is
#   removed first, with what make serving wrote into it, and make says so.
# make test: the linter (ruff, configured in pyproject.toml), then the test suite.
# make serving: export and freeze runs/demo (training it first when needed), build the C++ runner, tag with it.
# Each creates .venv when needed and installs the package into it (pip install -e ".[dev]", pins in
# pyproject.toml, and tensorflow-text with --no-deps): .venv/bin then holds the ner-* commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SAMPLE := data/sample
SAMPLE_EMB := embeddings/sample
DEMO := runs/demo

.PHONY: demo test serving clean
# A recipe that fails (or is interrupted) leaves no target that looks up to date.
.DELETE_ON_ERROR:

$(VENV)/.installed: pyproject.toml requirements-no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps -r requirements-no-deps.txt
	touch $@

$(SAMPLE_EMB)/meta.json: $(SAMPLE)/train.txt $(SAMPLE)/dev.txt $(SAMPLE)/test.txt | $(VENV)/.installed
	$(BIN)/ner-embvec --data_dir $(SAMPLE) --emb glove-6b-50d --out $(SAMPLE_EMB)

# history.jsonl gains a line per finished epoch; a training that stopped early loses it (above).
$(DEMO)/history.jsonl: experiments/demo.json $(SAMPLE_EMB)/meta.json | $(VENV)/.installed
	@if [ -e $(DEMO) ]; then \
		echo "$(DEMO): its inputs changed or its training did not finish: removing it (with its export/ and frozen/) to train again"; \
		rm -rf $(DEMO); \
	fi
	$(BIN)/ner-train --config experiments/demo.json --data_dir $(SAMPLE) --emb_dir $(SAMPLE_EMB) --model_dir $(DEMO)

demo: $(DEMO)/history.jsonl
	$(BIN)/ner-inference --model_dir $(DEMO) --input $(SAMPLE)/test.txt --output $(DEMO)/pred.txt
	$(BIN)/ner-conlleval < $(DEMO)/pred.txt
	$(BIN)/ner-inference --model_dir $(DEMO) --format text --input $(SAMPLE)/examples.txt --json

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

serving: $(DEMO)/history.jsonl
	$(BIN)/ner-export --model_dir $(DEMO)
	$(BIN)/ner-freeze --model_dir $(DEMO)
	cmake -S inference/cc -B build/cc
	cmake --build build/cc
	build/cc/tagger $(DEMO)/frozen < $(SAMPLE)/test.txt > $(DEMO)/pred_cc.txt
	$(BIN)/ner-conlleval < $(DEMO)/pred_cc.txt

clean:
	rm -rf $(DEMO) $(SAMPLE_EMB) build/cc
