"""The soak's pure parts (devtools/soak_plan.py) and its command line (devtools/soak.py)."""

from __future__ import annotations

import httpx
import pytest

from devtools.soak import (
    REVIEW_PAGE,
    Client,
    csrf_of,
    is_invitation_mail,
    parse_args,
    supplied_contacts,
)
from devtools.soak_plan import (
    FAMILY,
    FaultKind,
    backlog_threshold,
    catch_up_seconds,
    exact_copies,
    plan_faults,
    rss_growth,
    tally,
)
from shared.portal import review_page
from tests.reliability.cluster import KafkaCluster


def test_the_cli_defaults_to_half_an_hour_and_a_fault_every_two_minutes() -> None:
    args = parse_args([])
    assert args.minutes == 30
    assert args.fault_every == 120
    assert args.rss_settle == 300


def test_the_default_ports_are_no_other_stacks() -> None:
    """The shared stack, the demo, the benchmark and the fault tests' own brokers and databases
    (tests/reliability, tests/integration/reviews): a soak on one of them would take over the
    other's broker (kafka.sh start reuses a broker that answers on its port)."""
    args = parse_args([])
    kafka = {9092, 9192, 9292, 9492, 9493, 9592, 9593, 9692, 9693, 9694}
    kafka |= set(range(9792, 9798)) | set(range(9862, 9868))
    assert not set(range(args.kafka_port, args.kafka_port + 6)) & kafka
    assert args.pg_port not in {5432, 5442}
    assert not {args.smtp_port, args.smtp_port + 1} & {2525, 2526}
    db_proxies = set(range(args.pg_port + 10, args.pg_port + 15))
    assert not db_proxies & {5432, 5442, args.pg_port}
    routed = {port for link in KafkaCluster(args.kafka_port).routed_links.values() for port in link}
    assert len(routed) == 6
    assert not routed & (kafka | set(range(args.kafka_port, args.kafka_port + 6)))


def test_the_cli_shortens_the_run() -> None:
    args = parse_args(["--minutes", "4", "--fault-every", "40", "--seed", "7"])
    assert (args.minutes, args.fault_every, args.seed) == (4, 40, 7)


def test_the_cli_refuses_a_duration_that_is_not_a_number() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--minutes", "half an hour"])


def test_half_an_hour_has_a_fault_every_two_minutes_and_a_quiet_last_minute() -> None:
    plan = plan_faults(30 * 60, 120, seed=1)
    assert [p.at for p in plan] == [120.0 * n for n in range(1, 15)]
    assert plan[-1].at <= 30 * 60 - 60


def test_every_third_slot_is_two_faults_of_two_families() -> None:
    plan = plan_faults(30 * 60, 120, seed=3)
    doubles = [p for p in plan if len(p.kinds) == 2]
    assert [plan.index(p) + 1 for p in doubles] == [3, 6, 9, 12]
    for p in doubles:
        assert FAMILY[p.kinds[0]] != FAMILY[p.kinds[1]], p
    assert all(len(p.kinds) == 1 for p in plan if p not in doubles)


def test_every_kind_comes_before_any_comes_twice() -> None:
    for seed in range(20):
        kinds = [k for p in plan_faults(30 * 60, 120, seed=seed) for k in p.kinds]
        assert len(set(kinds[: len(FaultKind)])) == len(FaultKind), (seed, kinds)


def test_the_plan_is_the_same_for_the_same_seed() -> None:
    assert plan_faults(1800, 120, seed=5) == plan_faults(1800, 120, seed=5)
    assert plan_faults(1800, 120, seed=5) != plan_faults(1800, 120, seed=6)


def test_a_run_shorter_than_one_and_a_half_intervals_has_no_fault() -> None:
    assert plan_faults(170, 120) == []
    assert len(plan_faults(180, 120)) == 1


def test_tally_counts_what_is_missing_and_what_came_twice_ignoring_what_is_not_its_own() -> None:
    result = tally(["a", "b", "c"], ["a", "a", "a", "c", "other"])
    assert result.lost == ["b"]
    assert result.duplicated == {"a": 2}
    assert result.figures() == {"expected": 3, "lost": 1, "duplicated": 2}
    assert not result.ok


def test_tally_with_counts_per_key() -> None:
    result = tally({"T-1": 3, "T-2": 1}, ["T-1", "T-1", "T-2", "T-2"])
    assert result.lost == ["T-1"]
    assert result.duplicated == {"T-2": 1}
    assert tally({"T-1": 2}, ["T-1", "T-1"]).ok


def test_catch_up_is_measured_from_the_fault_to_the_first_calm_sample_after_healing() -> None:
    samples = [(0.0, 3.0), (10.0, 50.0), (20.0, 4.0), (30.0, 90.0), (40.0, None), (50.0, 5.0)]
    # calm at 20 s, but the fault was not healed until 25 s
    assert catch_up_seconds(samples, began=5.0, healed=25.0, threshold=10) == 45.0
    assert catch_up_seconds(samples, began=5.0, healed=15.0, threshold=10) == 15.0
    assert catch_up_seconds(samples, began=5.0, healed=55.0, threshold=10) is None


def test_caught_up_means_twice_the_calm_backlog_and_at_least_ten() -> None:
    samples = [(0.0, 20.0), (5.0, 30.0), (10.0, None), (15.0, 40.0), (130.0, 500.0)]
    assert backlog_threshold(samples, before=120) == 60.0
    assert backlog_threshold([(0.0, 1.0)], before=120) == 10.0
    assert backlog_threshold([], before=120) == 10.0


def test_memory_growth_counts_only_after_settling_and_uses_medians() -> None:
    samples = [(float(t), 100_000 if t < 300 else 120_000) for t in range(0, 300, 10)]
    samples += [(300.0, 120_000), (310.0, 999_999), (320.0, 120_000)]  # one spike is ignored
    samples += [(330.0, 125_000), (340.0, 131_000), (350.0, 131_000)]
    growth = rss_growth(samples, started=0.0)
    assert growth is not None
    assert (growth.baseline_kib, growth.end_kib) == (120_000, 131_000)
    assert growth.fraction == pytest.approx(11_000 / 120_000)


def test_a_process_too_young_to_judge_has_no_growth() -> None:
    samples = [(float(t), 100_000) for t in range(600, 660, 10)]
    assert rss_growth(samples, started=400.0) is None  # 5 samples after settling: too few
    assert rss_growth(samples, started=200.0) is not None


def test_an_agent_names_each_missing_client_by_its_number_in_the_closing() -> None:
    """Two clients missing and no numbers: the invitations API cannot tell which is which and
    the request stays open (the first full soak saw those agents opted out)."""
    clients = [
        Client("a@example.com", "+1 713 0000 000", "a@example.com"),
        Client(None, "+1 713 0000 001", "b@example.com"),
        Client("c@example.com", "+1 713 0000 002", "c@example.com"),
        Client(None, "+1 713 0000 003", "d@example.com"),
    ]
    assert supplied_contacts(clients) == [
        {"client": 2, "name": "Pat Doe 1", "email": "b@example.com"},
        {"client": 4, "name": "Pat Doe 3", "email": "d@example.com"},
    ]
    assert supplied_contacts(clients[:1]) == []


@pytest.mark.parametrize(
    ("to", "subject", "counted"),
    [
        ("client.soak.1@example.com", "How was buying 12 Elm St? Rate Ann Lee", True),
        ("Client.Soak.1@example.com", "Ann Lee ended your search: how did it go?", True),
        ("client.soak.1@example.com", "Reminder: how did Ann Lee do?", False),
        ("client.soak.1@example.com", "Thank you for rating Ann Lee", False),
        ("agent.A-soak-1@example.com", "How was buying 12 Elm St? Rate Ann Lee", False),
    ],
)
def test_only_invitations_count_as_invitation_mail(to: str, subject: str, counted: bool) -> None:
    """The third full run counted each thank-you mail as a second invitation (2,772 of them)."""
    assert is_invitation_mail(to, subject) is counted


def test_a_repeated_publication_counts_unless_its_review_was_erased() -> None:
    """The fourth full run: an erasure scrubbed a publication still in the outbox and published
    the review again, so two equal copies went out; only other repeats are failures."""
    kept = {"review_id": "r1", "comment": "fine"}
    erased = {"review_id": "r2", "comment": ""}
    copies = exact_copies([kept, dict(kept), erased, dict(erased), {"review_id": "r3"}], {"r2"})
    assert (copies.unexplained, copies.after_erasure) == (1, 1)
    assert exact_copies([kept, {**kept, "comment": "edited"}], set()).unexplained == 0


def test_the_agent_finds_the_review_in_the_portal_link_of_its_mail() -> None:
    """Mails link to the portal's review page, not an API route: the fourth run's agents found
    nothing to respond to (0 responses)."""
    review_id = "643e009b-02a1-47e8-bc90-77b925512a72"
    text = f"Respond on the review's page:\n{review_page('http://127.0.0.1:8007', review_id)}\n"
    match = REVIEW_PAGE.search(text)
    assert match is not None and match.group(1) == review_id


def test_the_agent_reads_the_csrf_token_of_a_portal_form() -> None:
    html = '<form method="post"><input type="hidden" name="csrf" value="t0k-3n_x"></form>'
    assert csrf_of(html) == "t0k-3n_x"
    with pytest.raises(httpx.HTTPError):
        csrf_of("<p>Signed out</p>")
