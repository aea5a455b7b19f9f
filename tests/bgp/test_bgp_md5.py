#!/usr/bin/python3
"""TCP MD5 (RFC 2385) between podfwd-control's gobgpd and BIRD: the
matching password establishes and routes flow; a wrong password, and a
password on one side only, never establish (a bounded window of 10 s in
which neither bgp.peers nor BIRD ever shows the session established and no
route arrives).

Usage: test_bgp_md5.py PODFWD_CONTROL PODFWDCTL"""
import time

from bgp_lab import BgpNode, Bird, Checks, Cleanup, Neighbor, dump_on_failure, peer_arg, run_tests, timed

check = Checks()
BIRD_IP, BIRD_AS = "10.168.0.10", 65010
GOOD, WRONG, ONESIDED = "10.168.0.2", "10.168.0.3", "10.168.0.4"
BLOCKS = ["10.100.0.0/26", "10.100.0.64/26"]
SECRET = "s3cret-Key_1"
WINDOW = 10


@timed
def test_md5(bins):
    with Cleanup() as c:
        bird = c.add(Bird("md5", BIRD_IP, BIRD_AS, [
            Neighbor(GOOD, 65001, name="good", password=SECRET),
            Neighbor(WRONG, 65001, name="wrong", password=SECRET),
            Neighbor(ONESIDED, 65001, name="onesided")], static=BLOCKS))
        good = c.add(BgpNode(bins, "md5good", GOOD, "10.244.0.0/24",
                             peers=[peer_arg(BIRD_IP, BIRD_AS, password=SECRET)]))
        wrong = c.add(BgpNode(bins, "md5wrong", WRONG, "10.244.1.0/24",
                              peers=[peer_arg(BIRD_IP, BIRD_AS, password="not-the-" + SECRET)]))
        onesided = c.add(BgpNode(bins, "md5one", ONESIDED, "10.244.2.0/24",
                                 peers=[peer_arg(BIRD_IP, BIRD_AS, password=SECRET)]))
        before = len(check.failures)
        try:
            good.wait_established(BIRD_IP)
            check(bird.established("good"), "matching password: established (bgp.peers and BIRD)")
            check(good.wait_bgp_table({p: BIRD_IP for p in BLOCKS}), "  ... and BIRD's routes arrive")

            # the good session is up, so gobgpd and BIRD work: the other two had every chance meanwhile
            seen = {"wrong": set(), "onesided": set(), "bird_wrong": set(), "bird_onesided": set()}
            routes = {"wrong": 0, "onesided": 0}
            deadline = time.monotonic() + WINDOW
            while time.monotonic() < deadline:
                seen["wrong"].add(wrong.peer_state(BIRD_IP))
                seen["onesided"].add(onesided.peer_state(BIRD_IP))
                seen["bird_wrong"].add(bird.bgp_state("wrong"))
                seen["bird_onesided"].add(bird.bgp_state("onesided"))
                routes["wrong"] = max(routes["wrong"], len(wrong.bgp_routes()))
                routes["onesided"] = max(routes["onesided"], len(onesided.bgp_routes()))
                time.sleep(0.2)
            check("established" not in seen["wrong"] and "Established" not in seen["bird_wrong"],
                  f"wrong password: never established in {WINDOW} s (podfwd {seen['wrong']}, BIRD {seen['bird_wrong']})")
            check(routes["wrong"] == 0, "wrong password: no route ever arrived")
            check("established" not in seen["onesided"] and "Established" not in seen["bird_onesided"],
                  f"password on podfwd's side only: never established "
                  f"(podfwd {seen['onesided']}, BIRD {seen['bird_onesided']})")
            check(routes["onesided"] == 0, "password on one side: no route ever arrived")
            check(bird.learned() == {"10.244.0.0/24": GOOD},
                  f"BIRD learned only the good node's pod CIDR ({bird.learned()})")
            check(good.peer_state(BIRD_IP) == "established", "the good session stayed up throughout")
        finally:
            dump_on_failure(check, before, [good, wrong, onesided], [bird])


if __name__ == "__main__":
    run_tests(check, test_md5)
