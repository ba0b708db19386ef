"""`invoke doctor`'s findings on fake env prefixes built like real ones (conda-meta, dist-info)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
import tasks
from invoke import Exit
from tests.testdata import CONDA, PYPI, Project, context_at, md5

from lockstep import doctor
from lockstep.core.explicit import read_explicit

SITE = "lib/python3.11/site-packages"
# conda package -> the Python distribution it installs.
CONDA_DISTS = {
    "pytorch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "pip": "pip",
    "invoke": "invoke",
    "pyyaml": "PyYAML",
}
CONDA_LIBS = {
    "libcublas": ["lib/libcublas.so.12", "lib/libcublas.so.12.9.1.4"],
    "cuda-cudart": ["lib/libcudart.so.12"],
    "libzlib": ["lib/libz.so.1"],
}


def fake_python(command: list[str], environ: Mapping[str, str]) -> str:
    """Answers as python does: PYTHONNOUSERSITE=1 disables the user site."""
    assert command[1:] == ["-c", "import site; print(site.ENABLE_USER_SITE)"]
    return "False" if environ.get("PYTHONNOUSERSITE") == "1" else "True"


def write_dist(prefix: Path, name: str, version: str, installer: str) -> str:
    dist_info = f"{SITE}/{name.replace('-', '_')}-{version}.dist-info"
    folder = prefix / dist_info
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / "INSTALLER").write_text(installer + "\n")
    return dist_info


def write_record(
    prefix: Path, name: str, version: str, build: str, files: list[str], digest: str | None = None
) -> None:
    record = {
        "name": name,
        "version": version,
        "build": build,
        "md5": digest or md5(name),
        "url": f"file:///channel/linux-64/{name}-{version}-{build}.conda",
        "files": files,
    }
    (prefix / "conda-meta" / f"{name}-{version}-{build}.json").write_text(json.dumps(record))


def build_env(prefix: Path) -> Path:
    """The env `invoke reproduce` makes from testdata.Project's locks."""
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").write_text("")
    for name, (version, build) in CONDA.items():
        files = list(CONDA_LIBS.get(name, []))
        if name == "python":
            files += ["bin/python"]
        if name in CONDA_DISTS:
            dist_info = write_dist(prefix, CONDA_DISTS[name], version, "conda")
            files += [f"{dist_info}/METADATA", f"{dist_info}/INSTALLER"]
        for path in files:
            if path.startswith("lib/lib"):
                (prefix / "lib").mkdir(exist_ok=True)
                (prefix / path).write_text("")
        write_record(prefix, name, version, build, files)
    for name, (version, _group, _deps) in PYPI.items():
        write_dist(prefix, name, version, "pip")
    (prefix / "conda-meta" / "state").write_text(
        json.dumps({"env_vars": {"PYTHONNOUSERSITE": "1"}})
    )
    return prefix


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Project().write(tmp_path / "project")


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return build_env(tmp_path / "env")


def examine(project: Path, env: Path) -> doctor.DoctorReport:
    lock = read_explicit(project / "conda-linux-64.lock")
    poetry_lock = tomllib.loads((project / "poetry.lock").read_text())
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return doctor.examine(
        env,
        lock,
        "poetry.lock",
        poetry_lock,
        pyproject,
        "conda",
        fake_python,
        environ={"PYTHONNOUSERSITE": "1"},
    )


def codes(project: Path, env: Path) -> list[str]:
    return sorted(f.code for f in examine(project, env).findings)


def test_env_built_from_the_locks_is_clean(project: Path, env: Path) -> None:
    report = examine(project, env)
    assert report.findings == []
    installers = {d.name: d.installer for d in report.distributions}
    assert installers["torch"] == "conda" and installers["rich"] == "pip"
    assert installers["pyyaml"] == "conda"


def test_conda_package_missing(project: Path, env: Path) -> None:
    next((env / "conda-meta").glob("libzlib-*.json")).unlink()
    found = examine(project, env).findings
    assert [(f.code, f.file) for f in found] == [("conda-missing", "conda-linux-64.lock")]


def test_conda_package_extra(project: Path, env: Path) -> None:
    write_record(env, "htop", "3.4.1", "h0_0", ["bin/htop"])
    (env / "bin" / "htop").write_text("")
    assert codes(project, env) == ["conda-extra"]


def test_conda_package_different_md5(project: Path, env: Path) -> None:
    next((env / "conda-meta").glob("libzlib-*.json")).unlink()
    write_record(env, "libzlib", "1.3.1", "hb9d3cd8_2", ["lib/libz.so.1"], digest="f" * 32)
    found = examine(project, env).findings
    assert [f.code for f in found] == ["conda-different"]
    assert "f" * 32 in found[0].what


def test_pypi_package_missing(project: Path, env: Path) -> None:
    shutil.rmtree(env / SITE / "mdurl-0.1.2.dist-info")
    assert codes(project, env) == ["pypi-missing"]


def test_pypi_package_other_version(project: Path, env: Path) -> None:
    shutil.rmtree(env / SITE / "rich-14.0.0.dist-info")
    write_dist(env, "rich", "13.9.4", "pip")
    found = examine(project, env).findings
    assert [f.code for f in found] == ["pypi-different"]
    assert "13.9.4" in found[0].what and "14.0.0" in found[0].what


def test_pypi_package_extra(project: Path, env: Path) -> None:
    write_dist(env, "requests", "2.32.4", "pip")
    assert codes(project, env) == ["pypi-extra"]


def test_distribution_installed_twice(project: Path, env: Path) -> None:
    write_dist(env, "pygments", "2.18.0", "pip")
    found = examine(project, env).findings
    assert [f.code for f in found] == ["installed-twice"]
    assert "2.18.0" in found[0].what and "2.19.1" in found[0].what


def test_conda_torch_overwritten_by_a_wheel(project: Path, env: Path) -> None:
    shutil.rmtree(env / SITE / "torch-2.7.1.dist-info")
    write_dist(env, "torch", "2.7.1+cu126", "pip")
    found = examine(project, env).findings
    assert [f.code for f in found] == ["conda-overwritten", "conda-file-missing"]
    assert "pytorch" in found[0].what and "pip installed 2.7.1+cu126" in found[0].what
    assert found[1].what == (
        f"pytorch 2.7.1 cuda129_py311_h1: 2 files gone: {SITE}/torch-2.7.1.dist-info/METADATA, "
        f"{SITE}/torch-2.7.1.dist-info/INSTALLER"
    )


def test_wheel_of_the_same_version_in_condas_own_folder(project: Path, env: Path) -> None:
    # `pip install --force-reinstall torch==2.7.1` reuses conda's folder name: only the bytes
    # of the files conda shipped (conda-meta paths_data) tell the two apart.
    folder = env / SITE / "torch-2.7.1.dist-info"
    record_path = next((env / "conda-meta").glob("pytorch-*.json"))
    record = json.loads(record_path.read_text())
    installer = f"{SITE}/torch-2.7.1.dist-info/INSTALLER"
    shipped = hashlib.sha256((folder / "INSTALLER").read_bytes()).hexdigest()
    record["paths_data"] = {"paths_version": 1, "paths": [{"_path": installer, "sha256": shipped}]}
    record_path.write_text(json.dumps(record))
    assert codes(project, env) == []
    (folder / "INSTALLER").write_text("pip\n")
    found = examine(project, env).findings
    assert [f.code for f in found] == ["conda-overwritten", "conda-file-altered"]
    assert "pip installed 2.7.1" in found[0].what


def test_cuda_library_from_conda_and_from_a_wheel(project: Path, env: Path) -> None:
    lib = env / SITE / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcublas.so.12").write_text("")
    write_dist(env, "nvidia-cublas-cu12", "12.6.4.1", "pip")
    found = examine(project, env).findings
    # The wheel is also outside poetry.lock's install set: both are reported.
    assert sorted(f.code for f in found) == ["duplicate-cuda-lib", "pypi-extra"]
    assert "libcublas" in next(f.what for f in found if f.code == "duplicate-cuda-lib")


def test_user_site_enabled(project: Path, env: Path) -> None:
    (env / "conda-meta" / "state").unlink()
    assert codes(project, env) == ["user-site-enabled"]


def test_user_site_ignores_the_callers_setting(env: Path) -> None:
    (env / "conda-meta" / "state").unlink()
    environ = doctor.user_site_environ(env, {"PYTHONNOUSERSITE": "1", "PATH": "/bin"})
    assert environ == {"PATH": "/bin"}


def test_env_without_python(project: Path, env: Path) -> None:
    (env / "bin" / "python").unlink()
    assert codes(project, env) == ["conda-file-missing", "no-python"]


def test_user_site_command_is_an_argument_list(env: Path) -> None:
    assert doctor.user_site_command(env) == [
        str(env / "bin" / "python"),
        "-c",
        "import site; print(site.ENABLE_USER_SITE)",
    ]


# --------------------------------------------------------------------------- the tasks


def test_doctor_task_exits_1_and_prints_json(project: Path, env: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(tasks, "_machine_platform", lambda: "linux-64")
    monkeypatch.setattr(doctor, "run_python", fake_python)
    write_dist(env, "requests", "2.32.4", "pip")
    with pytest.raises(Exit) as exit_info:
        tasks.doctor(context_at(project), prefix=str(env), json=True)
    assert exit_info.value.code == 1
    document = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in document["findings"]] == ["pypi-extra"]
    assert {"name": "requests", "version": "2.32.4", "installer": "pip"}.items() <= next(
        d for d in document["distributions"] if d["name"] == "requests"
    ).items()


def test_doctor_task_reports_the_file_check_and_can_skip_it(
    project: Path, env: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(tasks, "_machine_platform", lambda: "linux-64")
    monkeypatch.setattr(doctor, "run_python", fake_python)
    (env / "lib" / "libz.so.1").unlink()
    with pytest.raises(Exit):
        tasks.doctor(context_at(project), prefix=str(env), json=True)
    document = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in document["findings"]] == ["conda-file-missing"]
    check = document["file_check"]
    files = sum(len(CONDA_LIBS.get(n, [])) for n in CONDA) + 1 + 2 * len(CONDA_DISTS)
    assert (check["files"], check["hashed"], check["bytes_hashed"]) == (files, 0, 0)
    assert check["seconds"] >= 0
    tasks.doctor(context_at(project), prefix=str(env), json=True, no_file_check=True)
    document = json.loads(capsys.readouterr().out)
    assert document["findings"] == [] and "file_check" not in document


def test_check_task_clean_exits_0(project: Path, monkeypatch, capsys) -> None:
    tasks.check(context_at(project))
    assert capsys.readouterr().out.strip().splitlines() == [
        "check: clean, nothing found",
        "cooldown: none (exclude-newer in [tool.lockstep], e.g. '7d', holds back releases)",
    ]


def test_check_task_with_findings_exits_1(project: Path, monkeypatch, capsys) -> None:
    (project / "poetry.lock").unlink()
    with pytest.raises(Exit) as exit_info:
        tasks.check(context_at(project), json=True)
    assert exit_info.value.code == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["code"] == "poetry-lock-missing"
