"""Reader of podfwd-dataplane's counters segment, /dev/shm/<table>.stats.<pid>
(format: dataplane/app/README.md). Used by the tests and scripts/demo; the
C++ CLI will read the same layout."""
import struct

STATS_MAGIC = 0x5441545344574650
STATE_RUNNING = 2


def read_stats(path):
    """Header and per-lcore counters of /dev/shm/<table>.stats.<pid>, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if len(data) < 64:
        return None
    (magic, version, lcores, entry_size, counters_off, roles, n_actions, n_drops, pid, state,
     _, _, _) = struct.unpack_from("<QIIIIIIIIIIQQ", data, 0)
    if magic != STATS_MAGIC:
        return None
    total = {"state": state, "version": version, "lcores": lcores, "n_actions": n_actions,
             "n_drops": n_drops, "rx": [0] * roles, "tx": [0] * roles, "tx_dropped": [0] * roles,
             "actions": [0] * n_actions, "drops": [0] * n_drops, "idle_sleeps": 0}
    for i in range(lcores):
        base = 64 + i * entry_size
        _, _, _, idle_sleeps, _ = struct.unpack_from("<IIQQQ", data, base)
        total["idle_sleeps"] += idle_sleeps
        off = base + counters_off
        fields = struct.unpack_from(f"<{3 * roles + n_actions + n_drops}Q", data, off)
        for key, start, n in (("rx", 0, roles), ("tx", roles, roles), ("tx_dropped", 2 * roles, roles),
                              ("actions", 3 * roles, n_actions), ("drops", 3 * roles + n_actions, n_drops)):
            for k in range(n):
                total[key][k] += fields[start + k]
    return total
