"""The README and docs/ say what is true: the README's table of measured configs names configs that
exist, says truly what each reads, and shows only figures that experiments/results.json holds, at
the precision shown; every config file, relative link and command-line flag the pages name exists;
every config key is documented; the README stays a front door (about 200 lines) that links every
docs/ page.

The table's convention (between the README's `<!-- figures:begin -->` and `<!-- figures:end -->`):
the first column names the config (`NAME.json`; a row without one is a variant of the row above),
"reads" says `raw text` or `CoNLL POS/chunk columns`, the test F1 cell is `MEAN ± STD (RUN, ...)`,
`MEAN (N seeds)`, `MEAN (one seed)` or says the config is not (or being) measured, every figure of
the speed cell carries its unit (`ms` or `tokens/s`), and the last column names the results.json
entries that the row's figures come from."""
import dataclasses
import functools
import glob
import json
import os
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import pytest

from conftest import ROOT
from ner.config import Config

README = os.path.join(ROOT, "README.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
PAGES = [README, *DOCS]
EXPERIMENTS = os.path.join(ROOT, "experiments")
MAX_README_LINES = 220

NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
RAW_TEXT, COLUMNS = "raw text", "CoNLL POS/chunk columns"
NOT_MEASURED = re.compile(r"\b(?:being measured|not measured)\b")
# JSON files that the pages name and that are no config: model-folder, serving and weight files.
FORMAT_FILES = {"config.json", "serving.json", "meta.json", "integrity.json", "results.json", "options.json",
                "bert_config.json", "tokenizer_config.json", "tokenizer.json"}
# Commands whose flags the pages may show, by how a page calls them: the script whose --help lists them.
CONSOLE_COMMANDS = {"ner-embvec": "embvec.py", "ner-train": "train.py", "ner-inference": "inference.py",
                    "ner-export": "export.py", "ner-freeze": "freeze.py", "ner-serve": "serve.py",
                    "ner-beam-tag": "beam_tag.py", "ner-conlleval": "etc/conlleval.py"}
CHECKED_SCRIPTS = {*CONSOLE_COMMANDS.values(), *(os.path.relpath(path, ROOT) for path in
                                                 glob.glob(os.path.join(EXPERIMENTS, "benchmark_*.py")))}


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@dataclasses.dataclass
class Row:
    config: str      # the config file's name in experiments/
    reads: str
    f1: str          # the test F1 cell
    speed: str
    entries: list    # results.json entry names
    line: str


def figure_rows(text: str) -> list[Row]:
    """The rows of the README's table of measured configs."""
    begin, end = text.index("<!-- figures:begin -->"), text.index("<!-- figures:end -->")
    lines = [line for line in text[begin:end].splitlines() if line.startswith("|")]
    header = [cell.lower() for cell in cells(lines[0])]

    def column(word: str) -> int:
        return next(i for i, name in enumerate(header) if word in name)

    config_at, reads_at, f1_at, speed_at, entries_at = (column(w) for w in ("config", "reads", "test f1", "speed",
                                                                             "entries"))
    rows, config = [], None
    for line in lines[2:]:
        row = cells(line)
        named = re.match(r"`([\w.-]+\.json)`", row[config_at])
        config = named.group(1) if named else config
        assert config, f"README: the first row of the table names no config: {line}"
        rows.append(Row(config, row[reads_at], row[f1_at], row[speed_at], re.findall(r"`([\w.-]+)`", row[entries_at]),
                        line))
    return rows


@functools.cache
def results() -> dict:
    """results.json's entries by name: {name: [entry, ...]} (one entry per metric)."""
    by_name = {}
    for entry in json.loads(read(os.path.join(EXPERIMENTS, "results.json"))):
        by_name.setdefault(entry["name"], []).append(entry)
    return by_name


def shows(shown: str, value: float) -> bool:
    """Whether `shown` ("90.40", "38,460") is `value` rounded half up to the decimals shown."""
    shown_value = Decimal(shown.replace(",", ""))
    return Decimal(repr(value)).quantize(shown_value, rounding=ROUND_HALF_UP) == shown_value


def entries_of(row: Row, wanted) -> list[dict]:
    return [entry for name in row.entries for entry in results().get(name, []) if wanted(entry["metric"])]


ROWS = figure_rows(read(README))


def test_the_table_lists_the_configs():
    assert len(ROWS) >= 10
    assert {"bilstm_crf.json", "bert_bilstm_crf.json", "bert_bilstm_crf_pos_chunk.json"} <= {row.config for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.config)
def test_a_row_names_a_config_that_exists_and_says_what_it_reads(row):
    path = os.path.join(EXPERIMENTS, row.config)
    assert os.path.isfile(path), f"README names experiments/{row.config}, which does not exist"
    reads_columns = bool(json.loads(read(path)).get("feature_columns", []))
    assert row.reads == (COLUMNS if reads_columns else RAW_TEXT), (
        f"README: {row.config} reads {'CoNLL columns' if reads_columns else 'raw text'}, the table says {row.reads!r}")


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.config)
def test_every_entry_a_row_names_is_in_results_json(row):
    for name in row.entries:
        assert name in results(), f"README, {row.config}: no entry {name!r} in experiments/results.json"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.config)
def test_the_test_f1_is_an_entry_of_results_json(row):
    """MEAN ± STD (RUN, ...), MEAN (N seeds) or MEAN (one seed): one test_f1 entry of the row's has
    them all, its runs as many as the row says; or the row says it is not measured."""
    if NOT_MEASURED.search(row.f1):
        assert not re.search(r"\d+\.\d", row.f1), f"README, {row.config}: figures beside 'not measured': {row.f1}"
        return
    cell = row.f1.replace("*", "")
    parsed = re.fullmatch(rf"({NUMBER})(?: ± ({NUMBER}))? \((?:(one) seed|(\d+) seeds|([\d., ]+))\)", cell)
    assert parsed, f"README, {row.config}: the test F1 cell {row.f1!r} is not 'MEAN ± STD (RUN, ...)' or 'MEAN (N seeds)'"
    mean, std, one, count, listed = parsed.groups()
    runs = [run.strip() for run in listed.split(",")] if listed else None
    seeds = 1 if one else int(count) if count else len(runs)

    def fits(entry: dict) -> bool:
        values = [run["value"] for run in entry["runs"]]
        # Rounding keeps the order, so the runs shown and the values pair up once both are sorted.
        return (shows(mean, entry["mean"]) and (std is None or shows(std, entry["std"])) and len(values) == seeds
                and (runs is None or all(shows(run, value) for run, value in zip(sorted(runs, key=Decimal), sorted(values)))))

    candidates = entries_of(row, lambda metric: metric == "test_f1")
    assert candidates, f"README, {row.config}: a test F1 figure without a test_f1 entry named in its row"
    assert any(fits(entry) for entry in candidates), (
        f"README, {row.config}: {row.f1!r} is no test_f1 entry's mean, std and runs among "
        + "; ".join(f"{e['name']}: {e['mean']} ± {e['std']} {[r['value'] for r in e['runs']]}" for e in candidates))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.config)
def test_every_speed_figure_is_an_entry_of_results_json(row):
    """Each number carries its unit: ms figures are latency entries' values, tokens/s figures
    throughput entries' values, of the entries the row names."""
    numbers = re.findall(rf"(?<![\w.])({NUMBER})(?![\w.])", row.speed)
    figures = re.findall(rf"(?<![\w.])({NUMBER}) (ms|tokens/s)\b", row.speed)
    assert len(numbers) == len(figures), f"README, {row.config}: a speed figure without its unit (ms, tokens/s): {row.speed}"
    kinds = {"ms": lambda metric: metric.startswith("latency_ms"), "tokens/s": lambda metric: "tokens_per_s" in metric}
    for shown, unit in figures:
        candidates = entries_of(row, kinds[unit])
        values = [value for entry in candidates for value in (entry["mean"], *(run["value"] for run in entry["runs"]))]
        assert any(shows(shown, value) for value in values), (
            f"README, {row.config}: {shown} {unit} is in none of the entries {row.entries} ({sorted(set(values))})")


def test_the_figure_check_fails_on_a_figure_that_drifted():
    """The convention catches drift: the bilstm_crf row with its mean changed by 0.01 fits no entry."""
    row = next(row for row in ROWS if row.config == "bilstm_crf.json" and row.entries == ["bilstm_crf", "bilstm_crf-seed1"])
    mean = re.match(NUMBER, row.f1.replace("*", "")).group(0)
    drifted = dataclasses.replace(row, f1=row.f1.replace(mean, f"{Decimal(mean) + Decimal('0.01')}", 1))
    with pytest.raises(AssertionError, match="is no test_f1 entry"):
        test_the_test_f1_is_an_entry_of_results_json(drifted)
    with pytest.raises(AssertionError, match="is in none of the entries"):
        test_every_speed_figure_is_an_entry_of_results_json(dataclasses.replace(row, speed="C++ 0.001 ms"))


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_config_a_page_names_exists(page):
    text = read(page)
    named = set(re.findall(r"experiments/([\w.-]+\.json)\b", text))
    named |= {name for name in re.findall(r"(?<![\w/.-])([\w-]+\.json)\b", text) if name not in FORMAT_FILES}
    named = {name for name in named if not name[:-len(".json")].isupper()}  # NAME.json is a placeholder
    missing = sorted(name for name in named if not os.path.isfile(os.path.join(EXPERIMENTS, name)))
    assert not missing, f"{os.path.relpath(page, ROOT)} names configs that experiments/ lacks: {missing}"


def heading_anchors(path: str) -> set[str]:
    """GitHub's anchors of a page's headings."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", read(path), flags=re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_relative_link_points_to_a_file_that_exists(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", read(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        assert os.path.exists(resolved), f"{os.path.relpath(page, ROOT)}: the link {target} leads nowhere"
        if anchor:
            assert anchor in heading_anchors(resolved), f"{os.path.relpath(page, ROOT)}: no heading for #{anchor}"


def test_the_readme_is_a_front_door_that_links_every_docs_page():
    text = read(README)
    assert len(text.splitlines()) <= MAX_README_LINES, f"README.md has {len(text.splitlines())} lines"
    unlinked = [os.path.relpath(page, ROOT) for page in DOCS if f"](docs/{os.path.basename(page)})" not in text]
    assert DOCS and not unlinked, f"README.md links no docs page for {unlinked}"


def test_every_config_key_is_documented():
    text = read(os.path.join(ROOT, "docs", "configuration.md"))
    missing = [field.name for field in dataclasses.fields(Config) if f"`{field.name}`" not in text]
    assert not missing, f"docs/configuration.md does not document {missing}"


def code_blocks(text: str) -> list[str]:
    """The text of each of a page's plain code blocks (those a reader pastes into a shell)."""
    return re.findall(r"^```\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def command_lines(text: str):
    """(script, flags) for each command line in the pages' code blocks that calls a checked command:
    `python SCRIPT.py ...` or `ner-NAME ...`, alone, after `VAR=...` or `$ `, or after a pipe."""
    for block in code_blocks(text):
        commands = []
        for line in block.splitlines():
            code = line.split(" #")[0]
            if commands and line.startswith(" "):  # a continuation of the line above
                commands[-1] += " " + code
            else:
                commands.append(code)
        for command in commands:
            for part in re.split(r" \| | && ", command):  # a pipe; `conll|text` is a choice
                words = [word for word in part.split() if word != "$" and not re.match(r"[A-Z_]+=", word)]
                if words[:1] == ["python"] and len(words) > 1 and words[1] in CHECKED_SCRIPTS:
                    yield words[1], re.findall(r"(?<![\w-])--[a-z][\w-]*", part)
                elif words and words[0] in CONSOLE_COMMANDS:
                    yield CONSOLE_COMMANDS[words[0]], re.findall(r"(?<![\w-])--[a-z][\w-]*", part)


@functools.cache
def help_text(script: str) -> str:
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{script} --help: exit {done.returncode}: {done.stderr[-500:]}"
    return done.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_every_flag_a_page_shows_is_one_its_command_takes(page):
    for script, flags in command_lines(read(page)):
        unknown = sorted({flag for flag in flags if not re.search(rf"(?<![\w-]){flag}(?![\w-])", help_text(script))})
        assert not unknown, f"{os.path.relpath(page, ROOT)}: {script} --help knows no {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: os.path.relpath(path, ROOT))
def test_a_block_that_starts_a_command_in_the_background_waits_for_it_and_stops_it(page):
    """Pasted whole, such a block works: `curl -s` right after `ner-serve ... &` found nothing
    listening yet and printed nothing, and the service stayed behind holding its port."""
    for block in code_blocks(read(page)):
        lines = [line.split(" #")[0].strip() for line in block.splitlines()]
        for at, line in enumerate(lines):
            if line.endswith("&"):
                assert at + 1 < len(lines) and lines[at + 1].startswith("sleep "), (
                    f"{os.path.relpath(page, ROOT)}: nothing waits after `{line}` before the next command")
                assert "kill %1" in lines[at + 2:], f"{os.path.relpath(page, ROOT)}: nothing stops `{line}`"
