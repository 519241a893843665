"""A member erased through the API stays erased when an old export is imported again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import json_util

from tests.e2e.conftest import Env, ServiceProcess, processed, wait_for
from tests.services.ingestor.dce_helpers import dce_export, dce_message, dce_user

pytestmark = pytest.mark.slow

T0 = datetime(2024, 4, 1, tzinfo=UTC)
ZOE = dce_user("800000000000000007", "zoe_quintessa")
BEN = dce_user("800000000000000008", "ben")
ZOE_ID = "discord:acme:800000000000000007"
#: What Zoe wrote and was called: none of it may be stored after the erasure.
NEEDLES = ("zoe_quintessa", "800000000000000007", "zanzibarite")


def message(n: int, author: dict[str, Any], content: str, **overrides: Any) -> dict[str, Any]:
    timestamp = (T0 + timedelta(hours=n)).isoformat()
    return dce_message(str(5_000 + n), content, timestamp=timestamp, author=author, **overrides)


def test_erasure_through_the_api_survives_a_re_import(
    env: Env, classifier: ServiceProcess, sync_db: Any, tmp_path: Path
) -> None:
    export = tmp_path / "export.json"
    messages = [
        message(n, ZOE, f"my zanzibarite collection, part {n}")
        if n % 2
        else message(n, BEN, f"nice work <@{ZOE['id']}>, part {n}", mentions=[ZOE])
        for n in range(1, 21)
    ]
    export.write_text(json.dumps(dce_export(messages)))
    topic = env.vars["PEPITE_KAFKA_TOPIC_PREFIX"] + "messages.raw"
    env.pepite("import", str(export), "--community", "acme", "--no-progress")
    wait_for(lambda: processed(classifier, topic) >= 20, within_s=180, what="the import")

    api = env.service("api").start()
    try:
        api.wait_healthy()
        key = json.loads(
            env.pepite("keys", "create", "--community", "acme", "--scope", "admin").stdout
        )["key"]
        client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"})
        search = client.get("/v1/communities/acme/messages", params={"q": "zanzibarite"})
        assert len(search.json()["items"]) == 10

        erased = client.delete(f"/v1/communities/acme/members/{ZOE_ID}")
        assert erased.status_code == 202, erased.text

        def zoe_gone() -> bool:
            return sync_db["messages"].count_documents({"text": {"$regex": "zanzibarite"}}) == 0

        wait_for(zoe_gone, within_s=120, what="the erasure to reach the stored messages")

        # Last month's export, imported again: Zoe stays erased.
        env.pepite("import", str(export), "--community", "acme", "--no-progress")
        wait_for(lambda: processed(classifier, topic) >= 40, within_s=180, what="the re-import")

        assert sync_db["messages"].count_documents({"community_id": "acme"}) == 20
        for name in sync_db.list_collection_names():
            if name in {"erased_members", "erasures"}:
                continue  # the record that she was erased, by pseudonym and id only
            stored = json_util.dumps(list(sync_db[name].find({}))).lower()
            for needle in NEEDLES:
                assert needle not in stored, f"{needle!r} is back in {name}"
        search = client.get("/v1/communities/acme/messages", params={"q": "zanzibarite"})
        assert search.json()["items"] == []
        # Her messages still count, by a pseudonym; Ben's no longer name her.
        bens = client.get(
            "/v1/communities/acme/messages", params={"author_id": "discord:acme:800000000000000008"}
        ).json()["items"]
        assert len(bens) == 10
        assert all("zoe" not in m["text"] for m in bens)
        assert client.get(f"/v1/communities/acme/members/{ZOE_ID}").status_code in {404, 410}
        client.close()
    finally:
        api.stop()
