import string

import pytest
from psycopg.conninfo import conninfo_to_dict

from mercurio_migrate.redact import redact_url, scrub


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
    assert "s3" not in redact_url(dsn)


def test_scrub_removes_the_password_from_free_text():
    from mercurio_migrate.redact import secrets_of

    dsn = "postgresql://app:hunter22@db/m"
    assert scrub("failed for postgresql://app:hunter22@db/m", *secrets_of(dsn)) == "failed for postgresql://app:***@db/m"


@pytest.mark.parametrize(("dsn", "expected"), [
    # libpq ends a URI's password at '@' or '/' only: '#' and '?' are part of it
    ("postgresql://app:p#ss?w0rd@db/m", "postgresql://app:***@db/m"),
    # a parameter's name is percent-decoded by libpq too
    ("postgres://app@db/m?pass%77ord=s3cret&sslmode=require", "postgres://app@db/m?pass%77ord=***&sslmode=require"),
    # the client key's passphrase is a secret as well
    ("postgresql://app@db/m?sslpassword=s3cret", "postgresql://app@db/m?sslpassword=***"),
    # a '/' or '@' libpq reads as the end of the password: shown masked all the same (connecting is refused)
    ("postgresql://app:pa/ss#w0rd@db/m", "postgresql://app:***@db/m"),
    ("postgresql://app:p@ss#w0rd@db/m", "postgresql://app:***@db/m"),
    # libpq refuses this string; what follows `password=` may be part of the password
    ("host=db password=abc def", "host=db password=***"),
])
def test_passwords_are_found_where_libpq_finds_them(dsn, expected):
    assert redact_url(dsn) == expected


def test_every_character_libpq_takes_in_a_uri_password_is_hidden():
    """Each punctuation character libpq accepts unencoded in a URI's user info ('@' and '/' end it, '%'
    starts an escape): the password is gone from the redacted URL, and libpq reads *** in its place."""
    for character in sorted(set(string.punctuation) - set("@/%")):
        password = f"Ab12{character}Cd34{character}Ef56"
        dsn = f"postgresql://app:{password}@db/m?sslmode=disable"
        assert conninfo_to_dict(dsn)["password"] == password
        shown = redact_url(dsn)
        assert not any(piece in shown for piece in ("Ab12", "Cd34", "Ef56")), (character, shown)
        assert conninfo_to_dict(shown)["password"] == "***", (character, shown)


def test_a_piece_of_the_password_quoted_by_libpq_is_scrubbed():
    # libpq's message when it cannot read `password=abc def`: it quotes the part after the space
    assert scrub('missing "=" after "def" in connection info string', "abc def") == \
        'missing "=" after "***" in connection info string'
