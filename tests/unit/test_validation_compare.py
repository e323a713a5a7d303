"""validation.compare and render on hand-built captures: no database."""

from __future__ import annotations

from mercurio_migrate.snapshot import Snapshot, _obj
from mercurio_migrate.validation import Capture, RowCount, compare, render


def snap(*objects) -> Snapshot:
    return Snapshot(tuple(sorted(objects, key=lambda o: o.key)))


FUNNEL = _obj("table", "funnel", sql_name="public.funnel")
VERSION = _obj("table", "funnel_version", sql_name="public.funnel_version")
FK = _obj("constraint", "funnel_version.funnel_version_funnel_id_fkey", parent=VERSION.key,
          sql_name="funnel_version_funnel_id_fkey", type="foreign key",
          definition="FOREIGN KEY (funnel_id) REFERENCES funnel(id) ON DELETE CASCADE")


def test_compare_lists_created_objects_row_changes_and_new_foreign_keys():
    before = Capture(snap(FUNNEL), {"funnel": RowCount(3, True)})
    after = Capture(snap(FUNNEL, VERSION, FK), {"funnel": RowCount(3, True), "funnel_version": RowCount(3, True)})
    report = compare(before, after)
    assert [str(d) for d in report.created] == ["table funnel_version: added"]
    assert report.dropped == [] and report.changed == []
    assert [(r.table, r.delta) for r in report.rows] == [("funnel_version", 3)]
    assert [(f.table, f.name) for f in report.new_foreign_keys] == [("funnel_version", "funnel_version_funnel_id_fkey")]
    data = report.as_dict()
    assert data["rows"][0] == {"table": "funnel_version", "before": None, "after": {"rows": 3, "exact": True},
                               "delta": 3}
    assert render(report).splitlines() == [
        "created:", "  table funnel_version", "rows:", "  funnel_version: absent -> 3 (+3)", "new foreign keys:",
        "  funnel_version.funnel_version_funnel_id_fkey: FOREIGN KEY (funnel_id) REFERENCES funnel(id) ON DELETE CASCADE",
    ]


def test_estimates_are_marked_and_unchanged_counts_are_not_listed():
    before = Capture(snap(FUNNEL), {"funnel": RowCount(250_000, False), "x": RowCount(1, True)})
    after = Capture(snap(FUNNEL), {"funnel": RowCount(260_000, False), "x": RowCount(1, True)})
    report = compare(before, after)
    assert [r.table for r in report.rows] == ["funnel"]
    assert render(report) == "rows:\n  funnel: ~250000 -> ~260000 (+10000)"


def test_nothing_changed():
    capture = Capture(snap(FUNNEL), {"funnel": RowCount(0, True)})
    report = compare(capture, capture)
    assert report.empty
    assert render(report) == "no schema changes; no row counts changed"


def test_new_tables_without_rows_are_counted_in_the_text_and_listed_in_json():
    tables = [_obj("table", f"t{i}", sql_name=f"public.t{i}") for i in range(3)]
    before = Capture(snap(FUNNEL), {"funnel": RowCount(3, True)})
    after = Capture(snap(FUNNEL, *tables), {"funnel": RowCount(3, True), "t0": RowCount(0, True),
                                            "t1": RowCount(2, True), "t2": RowCount(0, True)})
    report = compare(before, after)
    assert [r["table"] for r in report.as_dict()["rows"]] == ["t0", "t1", "t2"]
    text = render(report).splitlines()
    assert text[text.index("rows:") + 1:] == ["  t1: absent -> 2 (+2)", "  2 new tables without rows"]
