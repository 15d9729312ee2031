# make demo: train on the synthetic sample corpus and tag a few sentences.
# make test: the linter (ruff, configured in pyproject.toml), then the test suite. Both create .venv and install requirements.txt when needed.
# make serving: export and freeze runs/demo (after make demo), build the C++ runner, tag with it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test serving clean

$(VENV)/.installed: requirements.txt requirements-no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-no-deps.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) embvec.py --data_dir data/sample --emb glove-6b-50d --out embeddings/sample
	rm -rf runs/demo
	$(PY) train.py --config experiments/demo.json --data_dir data/sample --emb_dir embeddings/sample --model_dir runs/demo
	$(PY) inference.py --model_dir runs/demo --input data/sample/test.txt --output runs/demo/pred.txt
	$(PY) etc/conlleval.py < runs/demo/pred.txt
	$(PY) inference.py --model_dir runs/demo --format text --input data/sample/examples.txt --json

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

serving: $(VENV)/.installed
	$(PY) export.py --model_dir runs/demo
	$(PY) freeze.py --model_dir runs/demo
	cmake -S inference/cc -B build/cc
	cmake --build build/cc
	build/cc/tagger runs/demo/frozen < data/sample/test.txt > runs/demo/pred_cc.txt
	$(PY) etc/conlleval.py < runs/demo/pred_cc.txt

clean:
	rm -rf runs/demo embeddings/sample build/cc
