"""The change report of update."""

from __future__ import annotations

from lockstep.lockdiff import Change, diff_versions, format_report


def test_diff_versions_added_removed_changed() -> None:
    changes = diff_versions(
        {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}, "conda"
    )
    assert changes == [
        Change("conda", "b", "2", "2.1"),
        Change("conda", "c", "3", None),
        Change("conda", "d", None, "4"),
    ]
    assert [c.kind for c in changes] == ["changed", "removed", "added"]


def test_format_report() -> None:
    changes = [
        Change("conda", "pytorch", "2.5.1", "2.6.0"),
        Change("pypi", "tinyhelper", None, "1.1"),
    ]
    assert format_report(changes) == (
        "2 package(s) changed:\n  conda pytorch     2.5.1 -> 2.6.0\n  pypi  tinyhelper  - -> 1.1"
    )
    assert format_report([]) == "No package changed."
