# SPDX-License-Identifier: GPL-2.0
"""Free page hinting under real live migrations between two QEMU processes.

Each guest holds a data set it verifies continuously and has written and
freed most of its memory before migrating. After every migration the data set
is intact and neither guest's kernel log shows a problem."""

import time

import migration as mig
from host_build import MIB

from migration import DIRTY_MIB, HINT, MEM_MIB, PARAMS


def _check_after(src, dst, what):
    mig.assert_intact(dst, what)
    mig.assert_clean(src, what + " (source)", running=False)
    mig.assert_clean(dst, what + " (destination)")


def test_migration_skips_hinted_memory(ctx):
    with mig.hinted_guest(ctx) as src:
        dst, info = mig.migrate(src)
        with dst:
            _check_after(src, dst, "plain migration")
            pages = int(mig.hint_stat(dst, "total_pages"))
            assert pages > 0, "no page was hinted"
            sent = info["ram"]["transferred"]
            # Most of the freed memory must not travel.
            assert sent < (MEM_MIB - DIRTY_MIB // 2) * MIB, \
                "%d MiB sent for a %d MiB guest with %d MiB freed (%d pages hinted)" % (
                    sent // MIB, MEM_MIB, DIRTY_MIB, pages)
            # The last session's request and first hints both fell within the
            # migration, which asked for them.
            first, took = (int(mig.hint_stat(dst, n)) for n in ("last_first_hint_us", "last_duration_us"))
            if int(mig.hint_stat(dst, "last_pages")):
                assert 0 < first < info["total-time"] * 1000, \
                    "last_first_hint_us %d for a migration of %d ms" % (first, info["total-time"])
            ctx.note("%d MiB sent; last session: first hints %d us after the request, %d us long" % (
                sent // MIB, first, took))


def test_migration_cancelled_then_repeated(ctx):
    with mig.hinted_guest(ctx) as src:
        dst = mig.start(src, bandwidth_mib=20)
        with dst:
            # Cancel once the guest has answered a hint request.
            time.sleep(1.0)
            src.qmp.cmd("migrate_cancel")
            info = mig.wait(src)
            assert info["status"] == "cancelled", "migration %s after migrate_cancel" % info["status"]
        started = int(mig.hint_stat(src, "sessions_started"))
        assert started >= 1, "no hinting session during the cancelled migration"
        mig.assert_intact(src, "after cancel")
        dst, info = mig.migrate(src)
        with dst:
            _check_after(src, dst, "migration after a cancelled one")
            assert int(mig.hint_stat(dst, "sessions_started")) > started, \
                "the second migration started no new hinting session"


def test_migration_there_and_back(ctx):
    with mig.hinted_guest(ctx) as src:
        mid, _ = mig.migrate(src)
        with mid:
            _check_after(src, mid, "first leg")
            mid.check("memload dirty %d" % (DIRTY_MIB // 2), timeout=300)
            back, info = mig.migrate(mid)
            with back:
                _check_after(mid, back, "return leg")
                assert int(mig.hint_stat(back, "sessions_started")) >= 2, \
                    "the return leg started no hinting session"


def test_migration_while_guest_allocates_and_frees(ctx):
    with mig.hinted_guest(ctx) as src:
        src.check("memload churn 256 30 >/dev/null 2>&1 &")
        dst, info = mig.migrate(src, bandwidth_mib=125)
        with dst:
            _check_after(src, dst, "migration under churn")
            # Pages handed out after the migration must hold what was written.
            dst.check("memload dirty 512", timeout=300)
            mig.assert_intact(dst, "after allocating on the destination")


def _migrate_with_declined_hinting(ctx, option):
    with mig.hinted_guest(ctx, append=option + "=1") as src:
        status = mig.hint_stat(src, "status")
        assert status == "off: " + option, "status with %s=1 is %r" % (option, status)
        dst, info = mig.migrate(src)
        with dst:
            # Allocate what was free: poison checks and zeroed allocations run.
            dst.check("memload dirty %d" % DIRTY_MIB, timeout=300)
            _check_after(src, dst, "migration with %s=1" % option)


def test_migration_with_page_poison(ctx):
    _migrate_with_declined_hinting(ctx, "page_poison")


def test_migration_with_init_on_free(ctx):
    _migrate_with_declined_hinting(ctx, "init_on_free")


def test_migration_with_hinting_disabled_at_runtime(ctx):
    with mig.hinted_guest(ctx) as src:
        src.check("echo 0 > %shinting" % PARAMS)
        assert mig.hint_stat(src, "status") == "off: hinting=0"
        dst, info = mig.migrate(src)
        with dst:
            _check_after(src, dst, "migration with hinting=0")
            assert int(mig.hint_stat(dst, "total_pages")) == 0, "pages hinted with hinting=0"
            assert int(mig.hint_stat(dst, "sessions_skipped")) >= 1, "no request was seen"


def test_parameters_reject_bad_values(ctx):
    with ctx.guest(mem_mib=512, balloon=HINT) as g:
        mig.load_driver(g, "ours")
        bad = {"hinting": ["2", "yes please", ""],
               "hint_min_order": ["-1", "99", "x", "11"],
               "hint_lock_budget": ["0", "1025", "-5", "abc"]}
        for name, values in bad.items():
            before = g.check("cat %s%s" % (PARAMS, name))
            for v in values:
                rc, out = g.run("echo '%s' > %s%s" % (v, PARAMS, name))
                assert rc != 0, "%s accepted %r" % (name, v)
                after = g.check("cat %s%s" % (PARAMS, name))
                assert after == before, "%s changed from %s to %s on %r" % (name, before, after, v)
        for name, v in (("hint_min_order", "3"), ("hint_lock_budget", "1"), ("hinting", "0")):
            g.check("echo %s > %s%s" % (v, PARAMS, name))
            got = g.check("cat %s%s" % (PARAMS, name))
            assert got in (v, "N" if v == "0" else v), "%s is %s after writing %s" % (name, got, v)
        mig.assert_clean(g, "parameters")


def test_migration_with_lock_budget_of_one(ctx):
    with mig.hinted_guest(ctx) as src:
        src.check("echo 1 > %shint_lock_budget" % PARAMS)
        dst, info = mig.migrate(src)
        with dst:
            _check_after(src, dst, "migration with hint_lock_budget=1")
            assert int(mig.hint_stat(dst, "total_pages")) > 0, "no page hinted with a budget of one"

# Run on every kernel, also those whose line in tools/testing/kernels says "core".
test_migration_skips_hinted_memory.core = True
