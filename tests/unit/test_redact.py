import pytest

from mercurio_migrate.redact import password_of, redact_url, scrub


@pytest.mark.parametrize(("dsn", "expected"), [
    ("postgresql://app:s3cret@db.example:5432/mercurio", "postgresql://app:***@db.example:5432/mercurio"),
    ("postgresql://app@db/mercurio?password=s3cret&sslmode=require",
     "postgresql://app@db/mercurio?password=***&sslmode=require"),
    ("host=db user=app password=s3cret dbname=m", "host=db user=app password=*** dbname=m"),
    ("host=db password='s3 cret' dbname=m", "host=db password=*** dbname=m"),
    ("postgresql://app@db/mercurio", "postgresql://app@db/mercurio"),
])
def test_passwords_are_redacted(dsn, expected):
    assert redact_url(dsn) == expected
    assert "s3" not in redact_url(dsn) or "s3" not in (password_of(dsn) or "s3")


def test_scrub_removes_the_password_from_free_text():
    dsn = "postgresql://app:hunter22@db/m"
    assert scrub("failed for postgresql://app:hunter22@db/m", password_of(dsn)) == "failed for postgresql://app:***@db/m"
