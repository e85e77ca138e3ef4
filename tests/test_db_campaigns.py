"""Campaign calendars: batches by position or by their own number, with clear errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from db import campaigns
from db.errors import BatchInvalid, BatchNotFound, CampaignNotFound, InvalidInput


def _conn(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


CALENDAR = {"batches": [
    {"caption": "launch day", "media_urls": ["https://cdn/1.jpg"],
     "scheduled_for": "2030-06-01T09:00:00Z"},
    {"caption": "day two", "scheduled_for": "2030-06-02T09:00:00+02:00"},
    {"caption": ""},
    {"caption": "naive", "scheduled_for": "2030-06-04T09:00:00"},
]}


def test_batches_by_position(database_url: str) -> None:
    with _conn(database_url) as conn:
        cid = campaigns.create_campaign(conn, uuid.uuid4(), "Spring", CALENDAR)
        first = campaigns.get_batch(conn, str(cid), 1)
        assert first.caption == "launch day" and first.media_urls == ["https://cdn/1.jpg"]
        assert first.scheduled_for == datetime(2030, 6, 1, 9, tzinfo=UTC)
        second = campaigns.get_batch(conn, cid, 2)
        assert second.scheduled_for == datetime(2030, 6, 2, 7, tzinfo=UTC)
        assert second.media_urls == []
        with pytest.raises(BatchInvalid, match="batch 3: caption"):
            campaigns.get_batch(conn, cid, 3)
        with pytest.raises(BatchInvalid, match="batch 4: scheduled_for.*timezone-aware"):
            campaigns.get_batch(conn, cid, 4)
        with pytest.raises(BatchNotFound, match="no batch 5"):
            campaigns.get_batch(conn, cid, 5)
        with pytest.raises(CampaignNotFound):
            campaigns.get_batch(conn, uuid.uuid4(), 1)
        with pytest.raises(InvalidInput, match="batch_number"):
            campaigns.get_batch(conn, cid, 0)
        with pytest.raises(InvalidInput, match="campaign_id: must be a UUID"):
            campaigns.get_batch(conn, "spring", 1)
        with pytest.raises(BatchInvalid):
            campaigns.list_batches(conn, cid)
        row = campaigns.get_campaign(conn, cid)
        assert row is not None and row["name"] == "Spring"
        assert row["creative_calendar"] == CALENDAR


def test_batches_with_their_own_numbers(database_url: str) -> None:
    with _conn(database_url) as conn:
        cid = campaigns.create_campaign(conn, uuid.uuid4(), "Numbered", {"batches": [
            {"batch_number": 10, "caption": "ten"},
            {"batch_number": 3, "caption": "three"},
        ]}, campaign_id=uuid.uuid4())
        assert campaigns.get_batch(conn, cid, 10).caption == "ten"
        assert campaigns.get_batch(conn, cid, 3).caption == "three"
        with pytest.raises(BatchNotFound):
            campaigns.get_batch(conn, cid, 1)
        assert [b.batch_number for b in campaigns.list_batches(conn, cid)] == [10, 3]
        campaigns.update_calendar(conn, cid, {"batches": [{"caption": "only"}]})
        assert campaigns.get_batch(conn, cid, 1).caption == "only"
        with pytest.raises(CampaignNotFound):
            campaigns.update_calendar(conn, uuid.uuid4(), {"batches": []})


def test_many_batches_and_bad_calendars(database_url: str) -> None:
    with _conn(database_url) as conn:
        big = {"batches": [{"caption": f"b{i}"} for i in range(1, 501)]}
        cid = campaigns.create_campaign(conn, uuid.uuid4(), "Big", big)
        assert campaigns.get_batch(conn, cid, 377).caption == "b377"
        assert len(campaigns.list_batches(conn, cid)) == 500
        empty = campaigns.create_campaign(conn, uuid.uuid4(), "Empty")
        with pytest.raises(BatchNotFound, match="has 0 batches"):
            campaigns.get_batch(conn, empty, 1)
        for bad in ({"batches": "x"}, {"batches": [1]}, ["a"]):
            with pytest.raises(InvalidInput, match="creative_calendar"):
                campaigns.create_campaign(conn, uuid.uuid4(), "Bad", bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="name"):
            campaigns.create_campaign(conn, uuid.uuid4(), " ", {})


def test_one_batch_read_in_postgresql_keeps_the_calendar_rules(database_url: str) -> None:
    """batch_and_owner sends back only the entries that may be the batch; the rules are
    still those of list_batches: a number given as text counts, a bad number anywhere or
    a number used twice refuses."""
    owner = uuid.uuid4()
    with _conn(database_url) as conn:
        cid = campaigns.create_campaign(conn, owner, "Rules", {"batches": [
            {"caption": "one"}, {"batch_number": "7", "caption": "seven"},
            {"batch_number": 2, "caption": "two"}, {"caption": "four"}]})
        assert campaigns.batch_and_owner(conn, cid, 7) == (owner, campaigns.get_batch(conn, cid, 7))
        assert campaigns.get_batch(conn, cid, 7).caption == "seven"
        assert campaigns.get_batch(conn, cid, 4).caption == "four"
        with pytest.raises(BatchNotFound, match="no batch 3 .it has 4 batches"):
            campaigns.get_batch(conn, cid, 3)
        campaigns.update_calendar(conn, cid, {"batches": [
            {"caption": "one"}, {"batch_number": 1, "caption": "again"}]})
        with pytest.raises(BatchInvalid, match="used by two batches"):
            campaigns.get_batch(conn, cid, 1)
        campaigns.update_calendar(conn, cid, {"batches": [
            {"caption": "one"}, {"batch_number": 1.5, "caption": "odd"}]})
        with pytest.raises(BatchInvalid, match="positive integer"):
            campaigns.get_batch(conn, cid, 1)
        campaigns.update_calendar(conn, cid, {"batches": [
            {"caption": "one"}, {"batch_number": 9, "caption": "nine"}]})
        owner_back, batches = campaigns.calendar(conn, cid)
        assert owner_back == owner and [b.batch_number for b in batches] == [1, 9]
