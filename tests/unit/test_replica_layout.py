"""Issue 18: the replica spec, the generated HAProxy config (checked by haproxy itself), its
stats CSV, and readiness saying "full"."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from frontdesk.balancer import BalancerLayout, haproxy_config, haproxy_path, parse_stats
from frontdesk.replicas import parse_replicas
from shared.observability.health import Readiness, readiness_status


def test_replica_spec_parses_and_rejects_with_a_message() -> None:
    spec = "media=3,gateway=2,brain=2,tools=2,recorder=2"
    assert parse_replicas(spec) == {
        "media": 3, "gateway": 2, "brain": 2, "tools": 2, "recorder": 2
    }
    assert parse_replicas("") == {}
    for bad, words in [
        ("media", "SERVICE=N"),
        ("speech=2", "SERVICE=N"),
        ("media=x", "not a number"),
        ("media=0", "between 1 and"),
        ("media=99", "between 1 and"),
        ("media=2,media=3", "given twice"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_replicas(bad)


LAYOUT = BalancerLayout(
    listen={"gateway": 18010, "media": 18020},
    replicas={"gateway": {"gateway": 18011}, "media": {"media": 18021, "media-1": 18022}},
    stats_port=18099,
    check_ms=750,
)


def test_haproxy_config_checks_readyz_and_haproxy_accepts_it(tmp_path: Path) -> None:
    text = haproxy_config(LAYOUT)
    assert "bind 127.0.0.1:18020" in text and "bind 127.0.0.1:18010" in text
    assert text.count("option httpchk GET /readyz") == 2
    assert "server media-1 127.0.0.1:18022 check" in text
    assert "default-server inter 750 " in text
    media = text[text.index("backend media_replicas") :]
    assert "balance leastconn" in media
    binary = haproxy_path()
    if binary is None:
        pytest.skip("HAPROXY MISSING: `make balancer-tools` installs Debian's haproxy")
    cfg = f"{tmp_path}/haproxy.cfg"
    with open(cfg, "w") as f:
        f.write(text)
    check = subprocess.run([binary, "-c", "-f", cfg], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_stats_csv_gives_each_servers_status() -> None:
    csv_text = (
        "# pxname,svname,qcur,scur,stot,status,check_status,last_chk,\n"
        "media_replicas,FRONTEND,0,0,5,OPEN,,,\n"
        "media_replicas,media,0,1,3,DOWN,L7STS,503,\n"
        "media_replicas,media-1,0,2,2,UP,L7OK,200,\n"
        "media_replicas,BACKEND,0,3,5,UP,,,\n"
    )
    states = parse_stats(csv_text)
    assert set(states) == {"media_replicas/media", "media_replicas/media-1"}
    assert states["media_replicas/media"]["status"] == "DOWN"
    assert states["media_replicas/media"]["check_status"] == "L7STS"
    assert states["media_replicas/media-1"]["scur"] == "2"


async def test_readiness_is_full_at_capacity_and_ready_below() -> None:
    live = [0]
    readiness = Readiness(None, None, load=lambda: live[0], capacity=2)
    live[0] = 1
    ready, checks = await readiness.check()
    assert ready and checks["calls"] == "1 of 2" and readiness_status(ready, checks) == "ready"
    live[0] = 2
    ready, checks = await readiness.check()
    assert not ready and checks["calls"] == "2 of 2 (full)"
    assert readiness_status(ready, checks) == "full"
    readiness.drain()  # draining wins over full: the replica is going away
    ready, checks = await readiness.check()
    assert readiness_status(ready, checks) == "not ready"
    unlimited = Readiness(None, None, load=lambda: 500, capacity=0)
    ready, checks = await unlimited.check()
    assert ready and checks["calls"] == "500 of no limit"
    assert readiness_status(False, {"redis": "down: ConnectionError", "calls": "2 of 2 (full)",
                                    "postgres": "not used", "draining": "no"}) == "not ready"


def test_compose_runs_replicas_behind_the_haproxy_config_it_mounts() -> None:
    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    assert services["media"]["deploy"]["replicas"] >= 2
    assert services["gateway"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["media"] and "ports" not in services["gateway"]
    assert {"8010:8010", "8020:8020"} <= set(services["haproxy"]["ports"])
    mounted = services["haproxy"]["volumes"][0].split(":")[0]
    config = (root / mounted).read_text()
    assert "server-template media- " in config and "option httpchk GET /readyz" in config
    binary = haproxy_path()
    if binary is None:
        pytest.skip("HAPROXY MISSING: `make balancer-tools` installs Debian's haproxy")
    cfg = str(root / mounted)
    check = subprocess.run([binary, "-c", "-f", cfg], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_sweep_sums_each_services_replicas_and_parses_counts() -> None:
    from sim.bench.replica_sweep import parse_counts, per_service, redis_modes, service_of

    assert parse_counts("1,2,4") == [1, 2, 4]
    for bad in ("", "0", "1,x", "9"):
        with pytest.raises(ValueError, match="--replicas"):
            parse_counts(bad)
    assert [service_of(n) for n in ("media-3", "media", "redis-1", "bench (callers)")] == [
        "media", "media", "redis", "bench (callers)"
    ]
    cpu = {"media": 0.2, "media-1": 0.25, "media-2": 0.1, "brain": 0.1, "redis-1": 0.01}
    assert per_service(cpu) == {"media": 0.55, "brain": 0.1, "redis": 0.01}
    assert set(redis_modes("both")) == {"single", "cluster"}
    with pytest.raises(ValueError, match="--redis"):
        redis_modes("sentinel")
