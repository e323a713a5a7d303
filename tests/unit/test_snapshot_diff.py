"""snapshot.diff on hand-built models: no database."""

from __future__ import annotations

from mercurio_migrate.snapshot import Snapshot, _obj, diff, differences, render


def snap(*objects) -> Snapshot:
    return Snapshot(tuple(sorted(objects, key=lambda o: o.key)))


TENANT = _obj("table", "tenant", sql_name="public.tenant", persistence="permanent",
              **{"column order": ("id", "name", "timezone")})


def column(name: str, **attrs):
    return _obj("column", f"tenant.{name}", parent=TENANT.key, sql_name=name, **attrs)


def test_equal_models_have_no_differences_whatever_the_order_of_construction():
    a = Snapshot(tuple(sorted([TENANT, column("id", type="bigint")], key=lambda o: o.key)))
    b = snap(column("id", type="bigint"), TENANT)
    assert a == b
    assert diff(a, b) == []


def test_changed_default_names_the_column_and_both_values():
    before = snap(TENANT, column("timezone", type="character varying", default="'UTC'::character varying"))
    after = snap(TENANT, column("timezone", type="character varying"))
    assert [str(d) for d in diff(before, after)] == [
        "column tenant.timezone: default 'UTC'::character varying -> none"]
    (d,) = diff(before, after)
    assert (d.status, d.attr, d.before, d.after, d.severity) == (
        "changed", "default", "'UTC'::character varying", None, "difference")


def test_added_and_removed_objects_are_named_and_children_fold_into_their_parent():
    extra = _obj("table", "audit.event", sql_name="audit.event")
    extra_col = _obj("column", "audit.event.id", parent=extra.key, sql_name="id", type="integer")
    index = _obj("index", "idx_x", parent=TENANT.key, definition="CREATE INDEX idx_x ON public.tenant (name)")
    before = snap(TENANT, index)
    after = snap(TENANT, extra, extra_col)
    assert [str(d) for d in diff(before, after)] == ["index idx_x: removed", "table audit.event: added"]
    assert [d.status for d in diff(after, before)] == ["removed", "added"]


def test_column_order_is_a_note_over_the_columns_both_sides_have():
    before = snap(_obj("table", "funnel_step", **{"column order": ("id", "funnel_id", "label")}))
    after = snap(_obj("table", "funnel_step", **{"column order": ("id", "label", "extra", "funnel_id")}))
    (d,) = diff(before, after)
    assert d.severity == "note"
    assert str(d) == "table funnel_step: column order (id, funnel_id, label) -> (id, label, funnel_id)"
    assert differences(diff(before, after)) == []


def test_column_added_at_the_end_is_not_an_order_note():
    before = snap(_obj("table", "t", **{"column order": ("id", "a")}))
    after = snap(_obj("table", "t", **{"column order": ("id", "a", "b")}))
    assert diff(before, after) == []


def test_long_or_multiline_values_are_reported_as_changed_with_full_text_kept():
    body_a = "CREATE OR REPLACE FUNCTION public.f()\n RETURNS integer\nAS $$ SELECT 1 $$"
    body_b = body_a.replace("1", "2")
    (d,) = diff(snap(_obj("function", "f()", definition=body_a)), snap(_obj("function", "f()", definition=body_b)))
    assert str(d) == "function f(): definition changed"
    assert (d.before, d.after) == (body_a, body_b)
    assert d.as_dict()["after"] == body_b


def test_every_changed_attribute_is_its_own_difference():
    before = snap(TENANT, column("name", type="text", **{"not null": False}))
    after = snap(TENANT, column("name", type="character varying(255)", **{"not null": True}, comment="Display"))
    assert [str(d) for d in diff(before, after)] == [
        "column tenant.name: comment none -> Display",
        "column tenant.name: not null no -> yes",
        "column tenant.name: type text -> character varying(255)",
    ]


def test_render_of_values():
    assert render(None) == "none"
    assert render(True) == "yes"
    assert render(("a", "b")) == "(a, b)"
    assert render(3) == "3"


def raw(**parts: list[list]) -> Snapshot:
    """A snapshot as take() returns it: each part one JSON row per line (missing parts empty)."""
    import json

    from mercurio_migrate.snapshot import PART_SPECS

    return Snapshot(parts={name: "\n".join(json.dumps(row) for row in parts.get(name, [])) for name in PART_SPECS})


def table_row(name: str, columns: list[str], comment: str | None = None) -> list:
    return ["r", name, f"public.{name}", "p", False, False, False, None, None, None, "", None, True, None, comment,
            columns]


def column_row(table: str, name: str, type_: str, default: str | None = None) -> list:
    return ["r", table, name, type_, False, default, "", "", None, None, None]


def test_raw_rows_and_built_objects_give_the_same_differences():
    before = raw(relations=[table_row("tenant", ["id", "timezone"]), table_row("old", ["id"])],
                 columns=[column_row("tenant", "id", "bigint"), column_row("tenant", "timezone", "text", "'UTC'::text"),
                          column_row("old", "id", "integer")])
    after = raw(relations=[table_row("tenant", ["id", "timezone"], comment="tenants"), table_row("new", ["id"])],
                columns=[column_row("tenant", "id", "bigint"), column_row("tenant", "timezone", "text"),
                         column_row("new", "id", "integer")])
    fast = diff(before, after)
    assert fast == diff(Snapshot(before.objects), Snapshot(after.objects))
    assert [str(d) for d in fast] == [
        "table old: removed",  # its column folds into it
        "table new: added",
        "column tenant.timezone: default 'UTC'::text -> none",
        "table tenant: comment none -> tenants",
    ]
    assert diff(before, before) == []


def test_a_side_without_tables_folds_every_child_without_reading_it():
    tables = raw(relations=[table_row("t", ["id"])], columns=[column_row("t", "id", "integer")])
    assert [str(d) for d in diff(raw(), tables)] == ["table t: added"]
    assert [str(d) for d in diff(tables, raw())] == ["table t: removed"]
