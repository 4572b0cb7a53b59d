"""The Slicer extension's files, checked without Slicer: CMake lists, the panel, the metadata.

Slicer's scripted-module macro copies each listed file to `<qt-scripted-modules>/<path as
written>`, so forgetting a file in a CMakeLists.txt breaks only the built extension, which CI never
builds. These tests read the CMake files, the .ui, RenderFM.json and the module's Python sources
(with `ast`: importing them needs Slicer's Qt) and compare them with the tree: every library file
is listed, the installed layout lets RenderFMLib find its Resources/, every widget the code uses
exists, the parameter node's fields are typed and bound to widgets of the right kind.
"""

from __future__ import annotations

import ast
import json
import py_compile
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "RenderFM"
HELPERS = MODULE_DIR / "RenderFMPanel"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "RenderFM.ui"
EXTENSION_ICON = REPO / "Resources" / "Icons" / "RenderFM.png"
MODULE_ICON = MODULE_DIR / "Resources" / "Icons" / "RenderFM.png"
NOT_INSTALLED = ("Resources/Icons/",)  # the extension's icon, referenced by URL only
SCHEMA = ("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
          "slicer-extension-catalog-entry-schema-v1.0.1.json#")
SCHEMA_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "enabled", "tier"}
GUI_CALLS = {"errorDisplay", "warningDisplay", "infoDisplay", "confirmOkCancelDisplay",
             "confirmYesNoDisplay", "delayDisplay", "messageBox"}


# --- reading CMake -------------------------------------------------------------------------

def _commands(path: Path) -> list[tuple[str, list[str]]]:
    """(lower-case command name, arguments) of each command in a CMake file, in order; quoted
    arguments unquoted, comments dropped, ${VAR} expanded from earlier set() calls."""
    text, variables, out = path.read_text(), {}, []
    for name, raw in _raw_commands(text):
        args = []
        for token, quoted in raw:
            whole = re.fullmatch(r"\$\{(\w+)\}", token)
            if whole and not quoted:
                args += variables.get(whole.group(1), [token])
            else:
                args.append(re.sub(r"\$\{(\w+)\}",
                                   lambda m: ";".join(variables.get(m.group(1), [m.group(0)])),
                                   token))
        if name == "set" and args:
            variables[args[0]] = args[1:]
        out.append((name, args))
    return out


def _raw_commands(text: str) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Commands as (name, [(token, quoted)]), scanning quotes, comments and nested parentheses."""
    commands, i = [], 0
    while i < len(text):
        if text[i] == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        match = re.compile(r"([A-Za-z_]\w*)\s*\(").match(text, i)
        if not match:
            i += 1
            continue
        i, tokens, depth, token, quoted = match.end(), [], 0, "", False
        while True:
            c = text[i]
            if c == '"':
                end = text.index('"', i + 1)
                token, quoted, i = token + text[i + 1:end], True, end + 1
                continue
            if c == "#":
                i = text.index("\n", i)
                continue
            if c in " \t\r\n" or (c == ")" and depth == 0):
                if token or quoted:
                    tokens.append((token, quoted))
                token, quoted = "", False
                if c == ")":
                    break
            else:
                depth += (c == "(") - (c == ")")
                token += c
            i += 1
        commands.append((match.group(1).lower(), tokens))
        i += 1
    return commands


def _keyword_lists(args: list[str], keywords: set[str]) -> dict[str, list[str]]:
    """A CMake call's arguments grouped under its keywords (options map to empty lists)."""
    groups, current = {}, None
    for arg in args:
        if arg in keywords:
            current = arg
            groups[current] = []
        elif current is not None:
            groups[current].append(arg)
    return groups


MACRO_KEYWORDS = {"NAME", "SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS", "WITH_SUBDIR", "VERBOSE"}


def _scripted_modules(path: Path) -> list[dict[str, list[str]]]:
    return [_keyword_lists(args, MACRO_KEYWORDS) for name, args in _commands(path)
            if name == "slicermacrobuildscriptedmodule"]


def _tree(folder: Path, pattern: str = "*") -> set[str]:
    """Files under folder matching pattern, relative to folder, without Python caches."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob(pattern)
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def library_macro() -> dict[str, list[str]]:
    (macro,) = [m for m in _scripted_modules(REPO / "CMakeLists.txt")
                if m["NAME"] == ["RenderFMLib"]]
    return macro


@pytest.fixture(scope="module")
def module_macro() -> dict[str, list[str]]:
    (macro,) = _scripted_modules(MODULE_DIR / "CMakeLists.txt")
    return macro


@pytest.fixture(scope="module")
def metadata() -> dict[str, str]:
    """The EXTENSION_* values of the top-level CMakeLists.txt."""
    return {args[0]: " ".join(args[1:]) for name, args in _commands(REPO / "CMakeLists.txt")
            if name == "set" and args[0].startswith("EXTENSION_")}


# --- CMake lists against the tree ------------------------------------------------------------

def test_the_cmake_reader_reads_what_cmake_would(tmp_path: Path) -> None:
    """Quotes, comments, nested parentheses and list variables, on a made-up file."""
    sample = tmp_path / "CMakeLists.txt"
    sample.write_text('set(A x.py "y z.py") # comment (\nfoo(NAME n SCRIPTS ${A} ${A}/w\n'
                      '  RESOURCES "a (b).txt")\n')
    assert _commands(sample) == [("set", ["A", "x.py", "y z.py"]),
                        ("foo", ["NAME", "n", "SCRIPTS", "x.py", "y z.py", "x.py;y z.py/w",
                                 "RESOURCES", "a (b).txt"])]


def _not_shipped() -> tuple[str, ...]:
    """The RenderFMLib folders the top-level CMakeLists.txt leaves out of the extension."""
    (folders,) = [args[1:] for name, args in _commands(REPO / "CMakeLists.txt")
                  if name == "set" and args[0] == "RENDERFMLIB_NOT_SHIPPED"]
    assert folders and all(f.startswith("RenderFMLib/") and f.endswith("/") for f in folders)
    return tuple(folders)


def test_library_scripts_list_every_module(library_macro: dict[str, list[str]]) -> None:
    listed = library_macro["SCRIPTS"]
    expected = {f"RenderFMLib/{p}" for p in _tree(REPO / "RenderFMLib", "*.py")
                if not f"RenderFMLib/{p}".startswith(_not_shipped())}
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert set(listed) - expected == set(), "listed but not in the tree"
    assert expected - set(listed) == set(), "in the tree but not in CMakeLists.txt"


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the RenderFMLib modules a library file imports, anywhere in it."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] == "RenderFMLib"}


def test_shipped_modules_import_nothing_left_out(library_macro: dict[str, list[str]]) -> None:
    left_out = tuple(f.rstrip("/").replace("/", ".") for f in _not_shipped())
    for script in library_macro["SCRIPTS"]:
        imported = _imported_modules(REPO / script)
        bad = {n for n in imported if any(n == f or n.startswith(f"{f}.") for f in left_out)}
        assert not bad, f"{script} imports {bad}, which the extension leaves out"


def test_the_import_reader_resolves_relative_imports() -> None:
    modules = _imported_modules(REPO / "RenderFMLib" / "cli" / "commands.py")
    assert {"RenderFMLib.errors", "RenderFMLib.cli.args", "RenderFMLib.api"} <= modules


def test_library_resources_list_every_data_file(library_macro: dict[str, list[str]]) -> None:
    """Kernel sources and any other package data, and every file of Resources/ but the
    extension's icon."""
    listed = library_macro["RESOURCES"]
    package_data = {f"RenderFMLib/{p}" for p in _tree(REPO / "RenderFMLib")
                    if not p.endswith(".py")}
    resources = {f"Resources/{p}" for p in _tree(REPO / "Resources")
                 if not f"Resources/{p}".startswith(NOT_INSTALLED)}
    assert {p for p in package_data if p.endswith((".cu", ".cuh"))}, "no kernel sources found"
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert set(listed) - (package_data | resources) == set(), "listed but not in the tree"
    assert (package_data | resources) - set(listed) == set(), "not listed in CMakeLists.txt"


def test_module_lists_its_scripts_and_resources(module_macro: dict[str, list[str]]) -> None:
    assert module_macro["NAME"] == ["RenderFM"]
    assert "WITH_GENERIC_TESTS" in module_macro
    assert sorted(module_macro["SCRIPTS"]) == sorted(_tree(MODULE_DIR, "*.py"))
    assert sorted(module_macro["RESOURCES"]) == sorted(
        f"Resources/{p}" for p in _tree(MODULE_DIR / "Resources"))


def test_listed_paths_land_where_the_macro_puts_them(library_macro, module_macro) -> None:
    """Relative paths inside their folder (the macro keeps them as written), .py scripts (it
    appends .py to anything else), and no two files on one installed path."""
    installed = {}
    for folder, macro in ((REPO, library_macro), (MODULE_DIR, module_macro)):
        for kind in ("SCRIPTS", "RESOURCES"):
            for path in macro[kind]:
                assert not Path(path).is_absolute() and ".." not in Path(path).parts, path
                assert (folder / path).is_file(), path
                assert kind == "RESOURCES" or path.endswith(".py"), path
                assert path not in installed, f"{path} installed twice"
                installed[path] = folder / path
    assert "RenderFM.py" in installed and "RenderFMLib/__init__.py" in installed


def test_extension_cmake_follows_slicer_conventions() -> None:
    names = [name for name, _ in _commands(REPO / "CMakeLists.txt")]
    calls = dict((name, args) for name, args in _commands(REPO / "CMakeLists.txt")
                 if name in ("project", "find_package", "add_subdirectory"))
    assert names[0] == "cmake_minimum_required"
    assert calls["project"] == ["RenderFM"]
    assert calls["find_package"] == ["Slicer", "REQUIRED"]
    assert calls["add_subdirectory"] == ["RenderFM"]
    includes = [args[0] for name, args in _commands(REPO / "CMakeLists.txt") if name == "include"]
    assert includes == ["${Slicer_USE_FILE}", "${Slicer_EXTENSION_GENERATE_CONFIG}",
                        "${Slicer_EXTENSION_CPACK}"]
    assert names.index("find_package") < names.index("slicermacrobuildscriptedmodule") \
        < names.index("add_subdirectory")
    module = _commands(MODULE_DIR / "CMakeLists.txt")
    testing = [i for i, (name, args) in enumerate(module) if name == "if"]
    unittest = [i for i, (name, args) in enumerate(module) if name == "slicer_add_python_unittest"]
    assert module[testing[0]][1] == ["BUILD_TESTING"] and unittest[0] > testing[0]
    assert module[unittest[0]][1] == ["SCRIPT", "RenderFM.py"]


def test_installed_layout_finds_its_resources(library_macro, tmp_path: Path) -> None:
    """The scripted-modules folder as the macro fills it: RenderFMLib imports from there, finds
    Resources/ beside itself, reads its presets and its kernel sources."""
    for path in library_macro["SCRIPTS"] + library_macro["RESOURCES"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, tmp_path / path)
    code = ("import json, RenderFMLib, RenderFMLib.resources as r, RenderFMLib.transfer as t; "
            "from RenderFMLib.render.cuda import kernel_sources; "
            "print(json.dumps([RenderFMLib.__file__, str(r.resources_dir()), "
            "len(t.preset_names()), sorted(kernel_sources())]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={"PYTHONPATH": str(tmp_path),
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    package, resources, presets, kernels = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(package).parent == tmp_path / "RenderFMLib"
    assert Path(resources) == tmp_path / "Resources"
    assert presets == len(json.loads((REPO / "Resources/presets/presets.json").read_text())[
        "presets"])
    assert kernels == sorted(p.name for p in (REPO / "RenderFMLib/render/cuda").glob("*.cu"))


# --- Extensions Index entry and icons --------------------------------------------------------

def test_index_entry_agrees_with_cmake(metadata: dict[str, str]) -> None:
    entry = json.loads((REPO / "RenderFM.json").read_text())
    assert set(entry) <= SCHEMA_KEYS and {"$schema", "category", "scm_url"} <= set(entry)
    assert entry["$schema"] == SCHEMA
    assert entry["category"] == metadata["EXTENSION_CATEGORY"] == "Rendering"
    assert entry["scm_url"].removesuffix(".git") == metadata["EXTENSION_HOMEPAGE"]
    depends = metadata["EXTENSION_DEPENDS"]
    assert entry.get("build_dependencies", []) == ([] if depends == "NA" else depends.split())
    assert entry.get("build_subdirectory", ".") == "."
    for key in ("EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION"):
        assert metadata[key].strip(), key


def test_metadata_urls_point_into_this_repository(metadata: dict[str, str]) -> None:
    repository = metadata["EXTENSION_HOMEPAGE"].removeprefix("https://github.com/")
    raw = f"https://raw.githubusercontent.com/{repository}/main/"
    urls = [metadata["EXTENSION_ICONURL"], *metadata["EXTENSION_SCREENSHOTURLS"].split()]
    for url in urls:
        assert url.startswith(raw), url
        assert (REPO / url.removeprefix(raw)).is_file(), url
    assert metadata["EXTENSION_ICONURL"] == raw + EXTENSION_ICON.relative_to(REPO).as_posix()


@pytest.mark.parametrize("icon", [EXTENSION_ICON, MODULE_ICON], ids=["extension", "module"])
def test_icons_are_128_pixel_pngs(icon: Path) -> None:
    data = icon.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (128, 128)


# --- the module's Python sources -------------------------------------------------------------

def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in _parse(path).body if isinstance(node, ast.ClassDef)}


def _names(nodes: list[ast.expr]) -> list[str]:
    return [ast.unparse(node) for node in nodes]


def _module_sources() -> list[Path]:
    return sorted(MODULE_DIR.rglob("*.py"))


def test_module_sources_compile(tmp_path: Path) -> None:
    for path in _module_sources():
        py_compile.compile(str(path), cfile=str(tmp_path / f"{path.stem}.pyc"), doraise=True)


def test_module_classes_and_bases() -> None:
    """Slicer finds RenderFM, RenderFMWidget, RenderFMLogic and RenderFMTest in RenderFM.py
    (the last three imported from RenderFMPanel), each on its Slicer base class."""
    module = _classes(MODULE_DIR / "RenderFM.py")
    assert list(module) == ["RenderFM"]  # the module file stays thin
    assert _names(module["RenderFM"].bases) == ["ScriptedLoadableModule"]
    assert _names(_classes(HELPERS / "widget.py")["RenderFMWidget"].bases) == [
        "ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert _names(_classes(HELPERS / "logic.py")["RenderFMLogic"].bases) == [
        "ScriptedLoadableModuleLogic"]
    assert _names(_classes(HELPERS / "selftest.py")["RenderFMTest"].bases) == [
        "ScriptedLoadableModuleTest"]
    imported = {alias.name: node.module for node in _parse(MODULE_DIR / "RenderFM.py").body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported["RenderFMLogic"] == "RenderFMPanel.logic"
    assert imported["RenderFMTest"] == "RenderFMPanel.selftest"
    assert imported["RenderFMWidget"] == "RenderFMPanel.widget"


def test_module_metadata() -> None:
    source = (MODULE_DIR / "RenderFM.py").read_text()
    init = ast.unparse(_classes(MODULE_DIR / "RenderFM.py")["RenderFM"])
    assert re.search(r"self\.parent\.title = _\('RenderFM'\)", init)
    assert re.search(r"categories = \[translate\('qSlicerAbstractCoreModule', 'Rendering'\)\]",
                     init)
    assert "2505.17338" in source and "Render-FM: A Foundation Model for" in source


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported when the file is imported (module body, also inside if/try there, but
    not under `if TYPE_CHECKING:`, which never runs)."""
    names, pending = [], list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            pending += node.orelse
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending += [child for child in ast.iter_child_nodes(node)
                        if isinstance(child, (ast.stmt, ast.ExceptHandler))]
        elif isinstance(node, ast.ExceptHandler):
            pending += node.body
    return names


@pytest.mark.parametrize("path", _module_sources(), ids=lambda p: p.name)
def test_no_pytorch_or_library_import_when_slicer_loads_the_module(path: Path) -> None:
    """Slicer imports these when it starts; PyTorch (and RenderFMLib, which needs it) may not
    be installed yet, so they are imported in functions, after the dependency check."""
    imported = _top_level_imports(_parse(path))
    heavy = [n for n in imported if n.split(".")[0] in ("torch", "RenderFMLib", "cupy")]
    assert heavy == [], heavy


def test_the_import_check_sees_a_guarded_import() -> None:
    tree = ast.parse("try:\n    import torch\nexcept ImportError:\n"
                     "    from RenderFMLib import api\n"
                     "if TYPE_CHECKING:\n    import cupy\nelse:\n    import numpy\n")
    assert sorted(_top_level_imports(tree)) == ["RenderFMLib", "numpy", "torch"]


@pytest.mark.parametrize("path", [HELPERS / "logic.py", HELPERS / "packages.py",
                                  HELPERS / "parameters.py",
                                  REPO / "RenderFMLib" / "slicer" / "side_by_side.py"],
                         ids=lambda p: p.name)
def test_logic_makes_no_gui_calls(path: Path) -> None:
    tree = _parse(path)
    assert not {"qt", "ctk"} & {n.split(".")[0] for n in _top_level_imports(tree)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not attributes & (GUI_CALLS | {"app", "layoutManager"}), attributes & GUI_CALLS


# --- the panel (.ui) against the code and the parameter node --------------------------------

@pytest.fixture(scope="module")
def ui() -> ET.Element:
    return ET.parse(UI_FILE).getroot()


def _widgets(ui: ET.Element) -> dict[str, ET.Element]:
    widgets = ui.iter("widget")
    found = {}
    for widget in widgets:
        assert widget.get("name") not in found, f"two widgets named {widget.get('name')}"
        found[widget.get("name")] = widget
    return found


def _property(widget: ET.Element, name: str) -> str | None:
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            return "".join(prop.itertext()).strip()
    return None


def _bound(ui: ET.Element) -> dict[str, ET.Element]:
    """SlicerParameterName -> widget."""
    return {_property(w, "SlicerParameterName"): w for w in _widgets(ui).values()
            if _property(w, "SlicerParameterName")}


def _ui_attributes(path: Path, owner: str) -> set[str]:
    """Names X in `<owner>.ui.X` in a source file (owner: "self" or "widget")."""
    return {node.attr for node in ast.walk(_parse(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui" and ast.unparse(node.value.value) == owner}


def _parameter_fields() -> dict[str, ast.AnnAssign]:
    node = _classes(HELPERS / "parameters.py")["RenderFMParameterNode"]
    assert _names(node.decorator_list) == ["parameterNodeWrapper"]
    statements = [s for s in node.body if not (isinstance(s, ast.Expr)
                                               and isinstance(s.value, ast.Constant))]
    untyped = [ast.unparse(s) for s in statements if not isinstance(s, ast.AnnAssign)]
    assert untyped == [], "every parameter needs a type annotation"
    return {s.target.id: s for s in statements}


def test_ui_is_a_module_panel(ui: ET.Element) -> None:
    root = ui.find("widget")
    assert ui.tag == "ui" and ui.findtext("class") == "RenderFM"
    assert (root.get("class"), root.get("name")) == ("qMRMLWidget", "RenderFM")
    declared = {c.findtext("class") for c in ui.iter("customwidget")}
    used = {w.get("class") for w in _widgets(ui).values()}
    assert {c for c in used if c.startswith(("qMRML", "ctk", "qSlicer"))} <= declared


def test_node_selectors_get_the_scene(ui: ET.Element) -> None:
    """Slicer convention: the panel's mrmlSceneChanged signal feeds every MRML widget."""
    selectors = {n for n, w in _widgets(ui).items() if w.get("class") == "qMRMLNodeComboBox"}
    connected = {c.findtext("receiver") for c in ui.iter("connection")
                 if c.findtext("sender") == "RenderFM"
                 and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    assert selectors and selectors == connected


def test_code_uses_only_widgets_that_exist(ui: ET.Element) -> None:
    names = set(_widgets(ui))
    used = _ui_attributes(HELPERS / "widget.py", "self")
    used |= _ui_attributes(HELPERS / "selftest.py", "widget")
    assert used and used - names == set()


def test_every_control_is_used(ui: ET.Element) -> None:
    """Each button, box and status label is either bound to a parameter or used by the code."""
    used = _ui_attributes(HELPERS / "widget.py", "self")
    used |= {widget.get("name") for widget in _bound(ui).values()}
    controls = {n for n, w in _widgets(ui).items()
                if w.get("class") in ("QPushButton", "QComboBox", "QCheckBox", "QSpinBox",
                                      "QProgressBar", "qMRMLNodeComboBox")
                or (w.get("class") == "QLabel" and not n.endswith("Label"))
                or n in ("statusLabel", "measureLabel")}
    assert controls - used == set()


def _annotated(annotation: ast.expr) -> tuple[str, dict[str, list]]:
    """(type, {annotation name: its literal arguments}) of `Annotated[type, Name(args), ...]`, or
    (type, {}) of a plain annotation."""
    if not (isinstance(annotation, ast.Subscript)
            and ast.unparse(annotation.value) == "Annotated"):
        return ast.unparse(annotation), {}
    kind, *extras = annotation.slice.elts
    return ast.unparse(kind), {ast.unparse(extra.func): [ast.literal_eval(a) for a in extra.args]
                               for extra in extras}


def test_parameter_node_fields_are_typed_and_bound(ui: ET.Element) -> None:
    fields = _parameter_fields()
    bound = _bound(ui)
    enums = {name for name, node in _classes(HELPERS / "parameters.py").items()
             if _names(node.bases) == ["enum.Enum"]}
    manual = {"preset"}  # the preset combo box is filled with icons and synced by the widget
    assert set(bound) == set(fields) - manual
    for name, widget in bound.items():
        annotation, extras = _annotated(fields[name].annotation)
        kind = widget.get("class")
        if annotation in enums:
            assert kind == "QComboBox", name
            default = fields[name].value
            assert default is not None and ast.unparse(default).startswith(f"{annotation}."), name
        elif annotation == "bool":
            assert kind == "QCheckBox", name
        elif annotation.startswith("vtkMRML"):
            assert kind == "qMRMLNodeComboBox", name
            assert _property(widget, "nodeTypes") == annotation, name
        elif annotation == "int":
            assert kind == "QSpinBox", name
            # Without WithinRange, connectGui widens the spin box to the whole int range.
            low, high = extras["WithinRange"]
            assert low <= ast.literal_eval(fields[name].value) <= high, name
        else:
            pytest.fail(f"{name}: no rule for {annotation} on a {kind}")
    assert ast.unparse(fields["preset"].annotation) == "str"


def test_group_checkboxes_are_the_library_groups() -> None:
    """GROUP_FIELDS names every anatomical group of Resources/segmentation/total_classes.json,
    in its order, and each field is a parameter."""
    tree = _parse(HELPERS / "parameters.py")
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign)
                and ast.unparse(n.targets[0]) == "GROUP_FIELDS"]
    groups = ast.literal_eval(value)
    table = json.loads((REPO / "Resources/segmentation/total_classes.json").read_text())
    assert list(groups.values()) == [g["name"] for g in table["groups"]]
    assert set(groups) <= set(_parameter_fields())


def test_default_preset_is_the_library_default() -> None:
    """The module takes the default from the library's one definition, not a copy."""
    tree = _parse(HELPERS / "parameters.py")
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign)
                and ast.unparse(n.targets[0]) == "DEFAULT_PRESET"]
    assert ast.unparse(value) == "library('RenderFMLib.resources').DEFAULT_PRESET"
    assert ast.unparse(_parameter_fields()["preset"].value) == "DEFAULT_PRESET"
