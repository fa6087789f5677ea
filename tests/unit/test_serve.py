"""`make run`'s console: one block with the address, the admin account and the log file."""

import pytest
from django.contrib.auth import authenticate, get_user_model

from deliberation import serve

pytestmark = pytest.mark.django_db


def test_a_fresh_lab_gets_an_admin_whose_password_is_in_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "BASE_DIR", tmp_path)
    monkeypatch.setattr(serve, "PASSWORD_FILE", tmp_path / "var" / "admin-password.txt")
    line = serve.admin_account()
    password = (tmp_path / "var" / "admin-password.txt").read_text().strip()
    assert line == "admin, password in var/admin-password.txt (made just now)"
    assert (tmp_path / "var" / "admin-password.txt").stat().st_mode & 0o077 == 0
    assert authenticate(username="admin", password=password).is_superuser
    assert serve.admin_account() == "admin, password in var/admin-password.txt"  # the next start


def test_an_existing_admin_is_named_with_how_to_reset_its_password(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "PASSWORD_FILE", tmp_path / "none.txt")
    get_user_model().objects.create_superuser("ada", password="a-long-test-password")
    assert serve.admin_account() == "ada (reset its password with: manage.py changepassword ada)"
    assert get_user_model().objects.count() == 1


def test_the_banner_is_one_block_with_the_address_the_admin_and_the_log(tmp_path):
    text = serve.banner(
        url="http://127.0.0.1:8000/",
        admin="admin, password in var/admin-password.txt",
        log=tmp_path / "hemicycle.log",
        lan=False,
    )
    assert "Hemicycle is running on http://127.0.0.1:8000/" in text
    assert "Admin account: admin, password in var/admin-password.txt" in text
    assert f"Logs (requests, the Celery worker, warnings): {tmp_path / 'hemicycle.log'}" in text
    assert "celery" not in text.lower().replace("the celery worker", "")
