"""Release listing from the package index (PEP 691 JSON), with the index stubbed."""

import io
import json

import pytest

from ftcompat.env import releases


def page(versions, yanked=(), pre=(), with_versions_key=True):
    """A PEP 691 project page: one wheel and one sdist per version; ``yanked`` ones fully yanked."""
    files = []
    for v in [*versions, *pre]:
        reason = "broken" if v in yanked else False
        files.append({"filename": f"pkg-{v}-py3-none-any.whl", "yanked": reason})
        files.append({"filename": f"pkg-{v}.tar.gz", "yanked": reason})
    data = {"meta": {"api-version": "1.1"}, "name": "pkg", "files": files}
    if with_versions_key:
        data["versions"] = [*versions, *pre]
    return data


def test_index_url_follows_the_installer():
    assert releases.index_url({}) == "https://pypi.org/simple"
    assert releases.index_url({"UV_INDEX_URL": "https://uv.example/simple/"}) == "https://uv.example/simple"
    both = {"UV_INDEX_URL": "https://uv.example/simple", "PIP_INDEX_URL": "https://pip.example/simple"}
    assert releases.index_url(both) == "https://pip.example/simple"  # install.py passes it to uv as --index-url


def test_versions_are_ordered_by_pep440_not_text():
    data = page(["4.10.0", "4.9.0", "4.9.1", "4.11.0", "4.8.2"])
    assert releases.available(data) == ["4.8.2", "4.9.0", "4.9.1", "4.10.0", "4.11.0"]
    assert releases.between(releases.available(data), "4.8.2", "4.11.0") == ["4.9.0", "4.9.1", "4.10.0"]


def test_between_works_either_way_and_excludes_endpoints_and_local_builds():
    versions = ["2.8.0", "2.9.0", "2.9.1", "2.10.0", "2.10.0+cpu"]
    assert releases.between(versions, "2.10.0+cpu", "2.8.0") == ["2.9.0", "2.9.1"]
    assert releases.between(versions, "2.8.0", "2.10.0") == ["2.9.0", "2.9.1"]
    assert releases.between(versions, "2.9.0", "2.9.1") == []


def test_yanked_releases_are_skipped_but_a_partly_yanked_one_stays():
    data = page(["1.0", "1.1", "1.2", "1.3"], yanked=["1.1"])
    data["files"].append({"filename": "pkg-1.2-cp311-cp311-manylinux_2_28_x86_64.whl", "yanked": True})
    assert releases.available(data) == ["1.0", "1.2", "1.3"]
    assert releases.yanked_versions(data["files"]) == {"1.1"}


def test_pre_releases_only_when_asked():
    data = page(["0.19.1", "0.20.0", "0.21.0"], pre=["0.20.0rc1", "0.21.0.dev0", "0.20.0.post1"])
    final = releases.between(releases.available(data), "0.19.1", "0.21.0")
    assert final == ["0.20.0", "0.20.0.post1"]  # a post-release is a final release
    with_pre = releases.between(releases.available(data), "0.19.1", "0.21.0", pre=True)
    assert with_pre == ["0.20.0rc1", "0.20.0", "0.20.0.post1", "0.21.0.dev0"]


def test_old_index_without_versions_key_uses_file_names():
    data = page(["1.0", "1.1", "1.2"], yanked=["1.1"], with_versions_key=False)
    data["files"].append({"filename": "pkg-0.9.win32.exe", "yanked": False})  # unreadable: ignored
    assert releases.available(data) == ["1.0", "1.2"]


def test_invalid_versions_are_ignored():
    data = {"versions": ["1.0", "not-a-version", "2.0"], "files": []}
    assert releases.available(data) == ["1.0", "2.0"]


def test_releases_between_uses_the_fetcher_with_the_normalized_name():
    seen = []

    def fetcher(name, index):
        seen.append((name, index))
        return page(["1.0", "1.1", "1.2", "2.0rc1", "2.0"])

    got = releases.releases_between("Some_Pkg", "1.0", "2.0", index="https://idx.example/simple", fetcher=fetcher)
    assert got == ["1.1", "1.2"] and seen == [("Some_Pkg", "https://idx.example/simple")]
    assert releases.normalize("Some_Pkg.x") == "some-pkg-x"


def test_fetch_asks_for_pep691_json(monkeypatch):
    captured = {}

    def urlopen(request, timeout):
        captured["url"], captured["accept"] = request.full_url, request.get_header("Accept")
        return io.BytesIO(json.dumps(page(["1.0"])).encode())

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    data = releases.fetch("Bits_And.Bytes", "https://idx.example/simple/")
    assert captured == {"url": "https://idx.example/simple/bits-and-bytes/",
                        "accept": "application/vnd.pypi.simple.v1+json"}
    assert data["versions"] == ["1.0"]


@pytest.mark.e2e
def test_real_pypi_lists_transformers_between_453_and_541():
    assert releases.releases_between("transformers", "4.53.3", "4.54.1") == ["4.54.0"]


def test_the_lister_turns_an_unreachable_index_into_a_machine_error(monkeypatch):
    import pytest

    from ftcompat.core.errors import MachineError

    def down(package, index, timeout=60.0):
        raise OSError("connection refused")

    monkeypatch.setattr(releases, "fetch", down)
    with pytest.raises(MachineError, match="cannot list the releases of trl from https://idx.example/simple"):
        releases.lister(index="https://idx.example/simple")("trl", "0.19.1", "0.22.2")
