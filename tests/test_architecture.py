"""The package's shape (README, Architecture): data flows one way through the stages, there is no
import cycle, no library module imports a root file or a command, and the root holds only the
commands' shims and the design card's façades."""
import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "ner")
COMMANDS = {"embvec", "train", "inference", "export", "freeze", "serve", "beam_tag"}
FACADES = {"config", "input", "model", "conftest"}
# A module may import its own stage and the stages before it, never a later one.
STAGES = {"ner.model_folder": 0, "ner.cli": 0, "ner.tf_options": 0, "ner.paths": 0, "ner.op_libraries": 0, "ner.progress": 0,
          "ner.wording": 0,
          "ner.data": 1, "ner.config": 1, "ner.integrity": 1,
          "ner.model": 2, "ner.training": 3, "ner.serving": 4, "ner.service": 5, "ner.beam": 5,
          # The commands come last: they may import every stage, and nothing in the library imports them.
          "ner.commands": 6}


def module_name(path: str) -> str:
    relative = os.path.relpath(path, ROOT)[:-len(".py")].replace(os.sep, ".")
    return relative[:-len(".__init__")] if relative.endswith(".__init__") else relative


def package_modules() -> dict[str, str]:
    modules = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                modules[module_name(path)] = path
    return modules


def imports(path: str, modules: dict[str, str]) -> set[str]:
    """Every module that `path` imports, at the top or inside a function: `from ner import x` counts
    as ner.x when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in modules)
    return found


def stage(module: str) -> int:
    return next(rank for prefix, rank in STAGES.items() if module == prefix or module.startswith(prefix + "."))


def test_every_package_module_belongs_to_a_stage():
    for module in package_modules():
        if module != "ner":
            stage(module)  # StopIteration names a module outside every stage


def test_data_flows_one_way_and_no_library_module_imports_a_root_file():
    modules = package_modules()
    offences = []
    for module, path in modules.items():
        for imported in imports(path, modules):
            top = imported.split(".")[0]
            if top in COMMANDS | FACADES | {"layers", "etc", "tests"}:
                offences.append(f"{module} imports the root file {imported}")
            elif top == "ner" and imported in modules and imported != "ner" and module != "ner":
                if stage(imported) > stage(module):
                    offences.append(f"{module} (stage {stage(module)}) imports {imported} (stage {stage(imported)})")
                elif {module.split(".")[1], imported.split(".")[1]} == {"service", "beam"}:
                    offences.append(f"{module} imports {imported}: the service and Beam are siblings")
    assert offences == []


def test_no_import_cycle():
    modules = package_modules()
    graph = {module: {i for i in imports(path, modules) if i in modules and i != "ner"} for module, path in modules.items()}
    visiting, done = [], set()

    def visit(module):
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join(visiting[visiting.index(module):] + [module])
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_root_holds_only_commands_and_facades():
    root_modules = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")}
    assert root_modules <= COMMANDS | FACADES, root_modules - COMMANDS - FACADES


def test_root_commands_are_shims_of_the_package_commands():
    """train.py and the others run ner.commands.<name>.main, as the console command ner-<name> does,
    and hold nothing else."""
    for command in COMMANDS:
        tree = ast.parse(open(os.path.join(ROOT, f"{command}.py"), encoding="utf-8").read())
        body = tree.body[1:] if ast.get_docstring(tree) else tree.body
        assert [ast.unparse(node) for node in body] == [
            "import sys", f"from ner.commands.{command} import main",
            "if __name__ == '__main__':\n    sys.exit(main())"], command


def test_commands_are_argparse_and_one_call_into_the_package():
    """A command module defines its main (train also run, which returns the Trainer) and no classes;
    before main runs it imports only the standard library and light ner modules (ner.cli, limits,
    constants): TensorFlow and Beam load inside main, once the arguments are good."""
    folder = os.path.join(PACKAGE, "commands")
    light = {"ner", "ner.cli", "ner.data", "ner.data.limits", "ner.data.pretrained", "ner.model_folder",
             "ner.commands", "ner.data.conlleval"}
    for name in os.listdir(folder):
        if not name.endswith(".py") or name == "__init__.py":
            continue
        tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
        assert functions <= {"main", "run"} and not classes, (name, functions, classes)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "ner":
                assert node.module in light, (name, node.module)
