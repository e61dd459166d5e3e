import pytest

from tests.support import use_broker

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client, broker_url):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "ok": True}


def test_healthz_is_503_when_the_broker_is_down(client, broker_url):
    use_broker("redis://127.0.0.1:1/0")
    try:
        response = client.get("/healthz")
    finally:
        use_broker(broker_url)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["broker"] != "ok" and body["ok"] is False


def test_pages_still_serve_when_the_broker_is_down(client, broker_url):
    use_broker("redis://127.0.0.1:1/0")
    try:
        assert client.get("/").status_code == 200
        assert client.get("/chapter/").status_code == 200
    finally:
        use_broker(broker_url)
