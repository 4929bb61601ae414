def test_health_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "ok"}


def test_login_page_is_chinese(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "工作人员登录" in response.content.decode()


def test_case_code_is_valid_and_sequenced(tree, people):
    from dispatch.codes import is_valid_code
    from tests import factories as f

    first = f.case(region=tree.village_a1, owner_unit=tree.centre_a, actor=people.alice)
    second = f.case(region=tree.village_a1, owner_unit=tree.centre_a, actor=people.alice)
    assert is_valid_code(first.code) and is_valid_code(second.code)
    assert first.code[:6] == "139901"
    assert int(second.code[14:19]) == int(first.code[14:19]) + 1


def test_home_links_each_role_to_its_work(client, people):
    client.force_login(people.alice)
    page = client.get("/").content.decode()
    assert "/intake/" in page and "/work/supervise/" not in page.split("<main>")[1]
    client.force_login(people.dave)
    page = client.get("/").content.decode()
    assert "/work/supervise/" in page.split("<main>")[1]
    assert '/intake/"' not in page.split("<main>")[1]
