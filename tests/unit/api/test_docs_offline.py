import re


def test_the_api_docs_page_loads_nothing_from_another_host(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert re.findall(r"https?://", response.content.decode()) == []
