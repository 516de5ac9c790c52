// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the command-id protocol of a hinting session
 * (hint_session.c).
 *
 * The session runs over the kernel's real free lists, through a sink that
 * keeps in memory every id and range queued, in order, and whose verdict the
 * test scripts: it turns at a given call of check(), after a given number of
 * batches, or while send_ranges() or send_id() waits for room in a full
 * queue. Whatever the moment, no range may be queued once it turned. With a
 * fence, the sink records where the session asked for it and covers the
 * windows the test chooses.
 *
 * Over 400 lines: one suite, whose cases all run on the scripted sink above.
 */

#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/slab.h>

#include "virtio_balloon_hint.h"

#define VB_TEST_ID		0x80000001U
/* Batches a session should at least produce for the cases that need them. */
#define VB_TEST_MIN_BATCHES	8

struct vb_sink_event {
	bool is_fence;
	bool is_id;
	u32 id;
	unsigned int part;	/* parts of the fence applied so far */
	struct vb_hint_range r;
	bool after_turn;	/* queued when the verdict had already turned */
};

struct vb_test_sink {
	struct vb_hint_sink sink;

	/* The script. */
	enum vb_hint_verdict verdict;	/* what check() answers once turned */
	unsigned int turn_at_check;	/* turn at this call of check(), from 1 */
	unsigned int turn_after_batches; /* turn once this many were queued */
	unsigned int full_at_batch;	/* this batch (from 1) finds no room */
	bool full_at_marker;		/* the start marker finds no room */
	int full_err;			/* what waiting for room ends in */
	int fence_err;			/* what the fence returns */
	struct vb_hint_fenced fenced;	/* what it covers when it succeeds */
	const unsigned long *second;	/* a second part covers these */

	/* What happened. */
	bool turned;
	bool asked;			/* check() said GO since the last send */
	unsigned int unasked_sends;	/* marker or batch queued without */
	unsigned int checks;
	unsigned int batches;
	unsigned int kicks;
	unsigned int parts;		/* of the fence, applied */
	struct vb_sink_event *ev;
	unsigned int nr_ev;
	unsigned int max_ev;
};

struct vb_session_ctx {
	struct zone **zones;
	unsigned int nr_zones;
	unsigned int min_order;
	struct vb_hint_range *batch;
	struct vb_hint_session s;
	struct vb_hint_cursor cur;
	struct vb_test_sink ts;
};

static struct vb_test_sink *vb_ts(struct vb_hint_sink *sink)
{
	return container_of(sink, struct vb_test_sink, sink);
}

static void vb_ts_record(struct vb_test_sink *ts, struct vb_sink_event ev)
{
	struct vb_sink_event *bigger;

	if (ts->nr_ev == ts->max_ev) {
		ts->max_ev = max(2 * ts->max_ev, 64U);
		bigger = krealloc(ts->ev, ts->max_ev * sizeof(*ts->ev),
				  GFP_KERNEL);
		if (WARN_ON(!bigger))
			return;
		ts->ev = bigger;
	}
	ev.after_turn = ts->turned;
	ev.part = ts->parts;
	ts->ev[ts->nr_ev++] = ev;
}

static enum vb_hint_verdict vb_ts_check(struct vb_hint_sink *sink, u32 id)
{
	struct vb_test_sink *ts = vb_ts(sink);

	ts->checks++;
	if (ts->turn_at_check && ts->checks >= ts->turn_at_check)
		ts->turned = true;
	ts->asked = !ts->turned;
	return ts->turned ? ts->verdict : VB_HINT_GO;
}

/* Queueing anything but STOP needs a GO from check() since the last send. */
static void vb_ts_sending(struct vb_test_sink *ts, u32 id)
{
	if (id == VIRTIO_BALLOON_CMD_ID_STOP)
		return;
	if (!ts->asked)
		ts->unasked_sends++;
	ts->asked = false;
}

/*
 * No room in the queue: wait for it the way the free page queue's sink does.
 * The verdict turns meanwhile (-ECANCELED), or the device never takes a
 * buffer (-ETIMEDOUT), or the queue fails (another error).
 */
static int vb_ts_wait_room(struct vb_test_sink *ts, u32 id)
{
	if (ts->full_err != -ECANCELED)
		return ts->full_err;
	ts->turned = true;
	if (vb_ts_check(&ts->sink, id) != VB_HINT_GO)
		return -ECANCELED;
	return -EAGAIN;
}

static int vb_ts_send_id(struct vb_hint_sink *sink, u32 id)
{
	struct vb_test_sink *ts = vb_ts(sink);
	int err;

	if (ts->full_at_marker && id != VIRTIO_BALLOON_CMD_ID_STOP) {
		err = vb_ts_wait_room(ts, id);
		if (err)
			return err;
	}
	vb_ts_sending(ts, id);
	vb_ts_record(ts, (struct vb_sink_event){ .is_id = true, .id = id });
	return 0;
}

static int vb_ts_send_ranges(struct vb_hint_sink *sink,
			     const struct vb_hint_range *r, unsigned int n)
{
	struct vb_test_sink *ts = vb_ts(sink);
	unsigned int i;
	int err;

	if (ts->full_at_batch && ts->batches + 1 == ts->full_at_batch) {
		err = vb_ts_wait_room(ts, VB_TEST_ID);
		if (err)
			return err;
	}
	vb_ts_sending(ts, VB_TEST_ID);
	for (i = 0; i < n; i++)
		vb_ts_record(ts, (struct vb_sink_event){ .r = r[i] });
	ts->batches++;
	if (ts->turn_after_batches && ts->batches == ts->turn_after_batches)
		ts->turned = true;
	return 0;
}

static void vb_ts_kick(struct vb_hint_sink *sink)
{
	vb_ts(sink)->kicks++;
}

/*
 * The fence covers ts->fenced.map; with a second part, the first call covers
 * those and leaves ts->second to the second call.
 */
static int vb_ts_fence(struct vb_hint_sink *sink, u32 id,
		       struct vb_hint_fenced *fenced, bool *more)
{
	struct vb_test_sink *ts = vb_ts(sink);

	vb_ts_record(ts, (struct vb_sink_event){ .is_fence = true, .id = id });
	if (ts->fence_err == -ECANCELED)
		ts->turned = true;
	if (ts->fence_err)
		return ts->fence_err;
	*fenced = ts->fenced;
	*more = ts->second && !ts->parts;
	if (ts->second) {
		fenced->map = ts->parts ? ts->second : ts->fenced.map;
		fenced->other = ts->parts ? ts->fenced.map : ts->second;
	}
	ts->parts++;
	return 0;
}

static const struct vb_hint_sink_ops vb_ts_ops = {
	.send_id = vb_ts_send_id,
	.send_ranges = vb_ts_send_ranges,
	.kick = vb_ts_kick,
	.check = vb_ts_check,
};

static const struct vb_hint_sink_ops vb_ts_fence_ops = {
	.send_id = vb_ts_send_id,
	.send_ranges = vb_ts_send_ranges,
	.kick = vb_ts_kick,
	.check = vb_ts_check,
	.fence = vb_ts_fence,
};

/* The highest order with enough free blocks for VB_TEST_MIN_BATCHES. */
static unsigned int vb_pick_min_order(struct vb_session_ctx *ctx)
{
	unsigned long blocks = 0;
	unsigned int i;
	int order;

	for (order = NR_PAGE_ORDERS - 1; order > 0; order--) {
		for (i = 0; i < ctx->nr_zones; i++)
			/* Unlocked: an estimate is all this needs. */
			blocks += data_race(ctx->zones[i]->free_area[order].nr_free);
		if (blocks >= 4 * VB_TEST_MIN_BATCHES)
			break;
	}
	return order;
}

static int vb_session_init(struct kunit *test)
{
	unsigned int max_zones = num_possible_nodes() * MAX_NR_ZONES;
	struct vb_session_ctx *ctx;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->zones = kunit_kcalloc(test, max_zones, sizeof(*ctx->zones),
				   GFP_KERNEL);
	ctx->batch = kunit_kcalloc(test, VB_HINT_BUDGET_MAX,
				   sizeof(*ctx->batch), GFP_KERNEL);
	if (!ctx->zones || !ctx->batch)
		return -ENOMEM;
	ctx->nr_zones = vb_hint_collect_zones(ctx->zones, max_zones);
	ctx->min_order = vb_pick_min_order(ctx);
	return 0;
}

static void vb_session_exit(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;

	if (ctx)
		kfree(ctx->ts.ev);
}

/* A fresh sink and session: one range per batch, over large blocks. */
static struct vb_test_sink *vb_prepare(struct vb_session_ctx *ctx,
				       enum vb_hint_verdict verdict)
{
	struct vb_test_sink *ts = &ctx->ts;

	kfree(ts->ev);
	memset(ts, 0, sizeof(*ts));
	ts->sink.ops = &vb_ts_ops;
	ts->verdict = verdict;
	ts->full_err = -ECANCELED;

	memset(&ctx->s, 0, sizeof(ctx->s));
	ctx->s.id = VB_TEST_ID;
	ctx->s.min_order = ctx->min_order;
	ctx->s.budget = 1;
	ctx->s.batch = ctx->batch;
	vb_hint_cursor_init(&ctx->cur, ctx->zones, ctx->nr_zones,
			    ctx->min_order);
	return ts;
}

static enum vb_hint_end vb_run(struct vb_session_ctx *ctx)
{
	return vb_hint_session_run(&ctx->s, &ctx->cur, &ctx->ts.sink);
}

static unsigned int vb_nr_ranges(const struct vb_test_sink *ts)
{
	unsigned int i, n = 0;

	for (i = 0; i < ts->nr_ev; i++)
		n += !ts->ev[i].is_id && !ts->ev[i].is_fence;
	return n;
}

static unsigned int vb_ranges_after_turn(const struct vb_test_sink *ts)
{
	unsigned int i, n = 0;

	for (i = 0; i < ts->nr_ev; i++)
		n += !ts->ev[i].is_id && ts->ev[i].after_turn;
	return n;
}

static unsigned int vb_count_id(const struct vb_test_sink *ts, u32 id)
{
	unsigned int i, n = 0;

	for (i = 0; i < ts->nr_ev; i++)
		n += ts->ev[i].is_id && ts->ev[i].id == id;
	return n;
}

static bool vb_last_is_stop(const struct vb_test_sink *ts)
{
	return ts->nr_ev && ts->ev[ts->nr_ev - 1].is_id &&
	       ts->ev[ts->nr_ev - 1].id == VIRTIO_BALLOON_CMD_ID_STOP;
}

/* The verdicts that end a session, and the ends they map to. */
static const enum vb_hint_verdict vb_turned_verdicts[] = {
	VB_HINT_STOP, VB_HINT_DONE, VB_HINT_NEWER, VB_HINT_DISABLED,
	VB_HINT_REMOVED,
};

static const char * const vb_verdict_names[] = {
	[VB_HINT_GO] = "go",
	[VB_HINT_STOP] = "stop",
	[VB_HINT_DONE] = "done",
	[VB_HINT_NEWER] = "newer_id",
	[VB_HINT_DISABLED] = "disabled",
	[VB_HINT_REMOVED] = "removed",
};

static void vb_verdict_desc(const enum vb_hint_verdict *v, char *desc)
{
	strscpy(desc, vb_verdict_names[*v], KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(vb_verdict, vb_turned_verdicts, vb_verdict_desc);

static enum vb_hint_verdict vb_param_verdict(struct kunit *test)
{
	return *(const enum vb_hint_verdict *)test->param_value;
}

static void session_queues_marker_first_and_stop_last(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);
	unsigned int i;

	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	KUNIT_ASSERT_GE(test, ts->nr_ev, 3U);
	KUNIT_EXPECT_TRUE(test, ts->ev[0].is_id);
	KUNIT_EXPECT_EQ(test, ts->ev[0].id, VB_TEST_ID);
	KUNIT_EXPECT_TRUE(test, vb_last_is_stop(ts));
	for (i = 1; i + 1 < ts->nr_ev; i++)
		KUNIT_EXPECT_FALSE_MSG(test, ts->ev[i].is_id,
				       "id %#x queued among the ranges",
				       ts->ev[i].id);
	KUNIT_EXPECT_EQ(test, vb_count_id(ts, VB_TEST_ID), 1U);
	KUNIT_EXPECT_GE(test, ts->batches, VB_TEST_MIN_BATCHES);
}

/*
 * The verdict may turn while a batch is read: the session asks right before
 * it queues the batch, never only before it reads one.
 */
static void session_asks_the_device_before_every_batch(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	KUNIT_EXPECT_GE(test, ts->batches, VB_TEST_MIN_BATCHES);
	KUNIT_EXPECT_EQ(test, ts->unasked_sends, 0U);
}

static void session_kicks_after_every_element(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	/* The start marker, every batch, and STOP. */
	KUNIT_EXPECT_EQ(test, ts->kicks, ts->batches + 2);
}

static void session_counts_the_pages_it_queued(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);
	u64 pages = 0;
	unsigned int i;

	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	for (i = 0; i < ts->nr_ev; i++) {
		if (ts->ev[i].is_id)
			continue;
		pages += ts->ev[i].r.nr_pages;
		KUNIT_EXPECT_GE(test, ts->ev[i].r.nr_pages,
				1UL << ctx->min_order);
	}
	KUNIT_EXPECT_EQ(test, ctx->s.ranges, (u64)vb_nr_ranges(ts));
	KUNIT_EXPECT_EQ(test, ctx->s.pages, pages);
	KUNIT_EXPECT_GT(test, ctx->s.lock_acquisitions, 0ULL);
}

/*
 * How a session whose verdict turns to the case's parameter may end, and
 * where: @arm sets the moment in the scripted sink; then no range may follow
 * the turn, and the figures count what was queued.
 */
enum vb_turn_moment {
	VB_TURN_BEFORE,		/* at the first check() */
	VB_TURN_AFTER_BATCHES,	/* after two batches */
	VB_TURN_IN_FULL_QUEUE,	/* while the third batch waits for room */
	VB_TURN_BEFORE_MARKER,	/* while the start marker waits for room */
};

static struct vb_test_sink *vb_run_turning(struct kunit *test,
					   enum vb_turn_moment moment)
{
	struct vb_session_ctx *ctx = test->priv;
	enum vb_hint_verdict v = vb_param_verdict(test);
	struct vb_test_sink *ts = vb_prepare(ctx, v);

	ts->turn_at_check = moment == VB_TURN_BEFORE ? 1 : 0;
	ts->turn_after_batches = moment == VB_TURN_AFTER_BATCHES ? 2 : 0;
	ts->full_at_batch = moment == VB_TURN_IN_FULL_QUEUE ? 3 : 0;
	ts->full_at_marker = moment == VB_TURN_BEFORE_MARKER;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), vb_hint_end_of(v));
	KUNIT_EXPECT_EQ(test, vb_ranges_after_turn(ts), 0U);
	KUNIT_EXPECT_EQ(test, ctx->s.ranges, (u64)vb_nr_ranges(ts));
	return ts;
}

static void session_queues_nothing_when_verdict_turned_before(struct kunit *test)
{
	struct vb_test_sink *ts = vb_run_turning(test, VB_TURN_BEFORE);

	KUNIT_EXPECT_EQ(test, ts->nr_ev, 0U);
}

static void session_drops_the_batch_read_when_verdict_turns(struct kunit *test)
{
	struct vb_test_sink *ts = vb_run_turning(test, VB_TURN_AFTER_BATCHES);

	KUNIT_EXPECT_EQ(test, ts->batches, 2U);
	KUNIT_EXPECT_TRUE(test, vb_last_is_stop(ts));
}

static void session_queues_nothing_when_verdict_turns_in_full_queue(struct kunit *test)
{
	struct vb_test_sink *ts = vb_run_turning(test, VB_TURN_IN_FULL_QUEUE);

	KUNIT_EXPECT_EQ(test, ts->batches, 2U);
}

static void session_queues_nothing_when_verdict_turns_before_marker_fits(struct kunit *test)
{
	struct vb_test_sink *ts = vb_run_turning(test, VB_TURN_BEFORE_MARKER);

	KUNIT_EXPECT_EQ(test, vb_count_id(ts, VB_TEST_ID), 0U);
	KUNIT_EXPECT_EQ(test, vb_nr_ranges(ts), 0U);
}

/*
 * Let the verdict turn at every call of check() a complete session makes,
 * one session each: not one range may follow, whatever the moment.
 */
static void session_queues_no_range_after_verdict_turns_at_any_check(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);
	unsigned int checks, k;
	enum vb_hint_verdict v;
	enum vb_hint_end end;

	KUNIT_ASSERT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	checks = ts->checks;
	KUNIT_ASSERT_GE(test, checks, VB_TEST_MIN_BATCHES);
	for (k = 1; k <= checks + 1; k++) {
		v = vb_turned_verdicts[k % ARRAY_SIZE(vb_turned_verdicts)];
		ts = vb_prepare(ctx, v);
		ts->turn_at_check = k;
		end = vb_run(ctx);
		KUNIT_EXPECT_EQ_MSG(test, vb_ranges_after_turn(ts), 0U,
				    "verdict turned at check %u", k);
		KUNIT_EXPECT_EQ_MSG(test, end,
				    ts->turned ? vb_hint_end_of(v) :
						 VB_HINT_END_COMPLETED,
				    "verdict turned at check %u", k);
		KUNIT_EXPECT_LE(test, vb_count_id(ts, VB_TEST_ID), 1U);
	}
}

static void session_times_out_when_device_never_drains(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	ts->full_at_batch = 2;
	ts->full_err = -ETIMEDOUT;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_TIMEOUT);
	KUNIT_EXPECT_EQ(test, ts->batches, 1U);
	/* Nothing more goes to a queue the device does not empty. */
	KUNIT_EXPECT_EQ(test, vb_count_id(ts, VIRTIO_BALLOON_CMD_ID_STOP), 0U);
}

static void session_times_out_when_marker_never_fits(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	ts->full_at_marker = true;
	ts->full_err = -ETIMEDOUT;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_TIMEOUT);
	KUNIT_EXPECT_EQ(test, ts->nr_ev, 0U);
}

static void session_fails_when_queue_refuses_a_buffer(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	ts->full_at_batch = 1;
	ts->full_err = -EIO;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_ERROR);
	KUNIT_EXPECT_EQ(test, vb_nr_ranges(ts), 0U);
	KUNIT_EXPECT_EQ(test, vb_count_id(ts, VIRTIO_BALLOON_CMD_ID_STOP), 0U);
}

/* Chunks of one largest block each: many of them, even in a small UML. */
#define VB_TEST_CHUNK_SHIFT	(NR_PAGE_ORDERS - 1)

/*
 * Arm @ts's fence with one window per chunk of VB_TEST_CHUNK_SHIFT, and
 * cover the chunks for which @covered(chunk) holds. The tables are freed
 * with the test.
 */
static void vb_arm_fence(struct kunit *test, struct vb_session_ctx *ctx,
			 bool (*covered)(unsigned long chunk))
{
	struct vb_test_sink *ts = &ctx->ts;
	unsigned long end = 0, c, *map;
	struct vb_fence_window *win;
	unsigned int i;

	for (i = 0; i < ctx->nr_zones; i++)
		end = max(end, zone_end_pfn(ctx->zones[i]));
	ts->fenced.nr_win = DIV_ROUND_UP(end, 1UL << VB_TEST_CHUNK_SHIFT);
	map = kunit_kcalloc(test, BITS_TO_LONGS(ts->fenced.nr_win),
			    sizeof(*map), GFP_KERNEL);
	win = kunit_kcalloc(test, ts->fenced.nr_win, sizeof(*win), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, map);
	KUNIT_ASSERT_NOT_NULL(test, win);
	for (c = 0; c < ts->fenced.nr_win; c++) {
		win[c].start_pfn = c << VB_TEST_CHUNK_SHIFT;
		win[c].end_pfn = (c + 1) << VB_TEST_CHUNK_SHIFT;
		if (covered(c))
			__set_bit(c, map);
	}
	ts->fenced.win = win;
	ts->fenced.map = map;
	ts->sink.ops = &vb_ts_fence_ops;
}

static bool vb_every_chunk(unsigned long chunk)
{
	return true;
}

static bool vb_even_chunk(unsigned long chunk)
{
	return !(chunk & 1);
}

/* A fence in two parts: the even chunks first, then the odd ones. */
static void vb_arm_fence_in_two_parts(struct kunit *test,
				      struct vb_session_ctx *ctx)
{
	struct vb_test_sink *ts = &ctx->ts;
	unsigned long *odd;

	vb_arm_fence(test, ctx, vb_even_chunk);
	odd = kunit_kcalloc(test, BITS_TO_LONGS(ts->fenced.nr_win),
			    sizeof(*odd), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, odd);
	bitmap_complement(odd, ts->fenced.map, ts->fenced.nr_win);
	ts->second = odd;
}

static void session_fences_after_marker_and_before_any_range(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	vb_arm_fence(test, ctx, vb_every_chunk);
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	KUNIT_ASSERT_GE(test, ts->nr_ev, 3U);
	KUNIT_EXPECT_TRUE(test, ts->ev[0].is_id && ts->ev[0].id == VB_TEST_ID);
	KUNIT_EXPECT_TRUE(test, ts->ev[1].is_fence && ts->ev[1].id == VB_TEST_ID);
	KUNIT_EXPECT_GT(test, vb_nr_ranges(ts), 0U);
	KUNIT_EXPECT_EQ(test, ctx->s.unfenced_pages, 0ULL);
}

static void session_hints_only_in_fenced_chunks(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);
	unsigned long first, last;
	unsigned int i;

	vb_arm_fence(test, ctx, vb_even_chunk);
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	for (i = 0; i < ts->nr_ev; i++) {
		if (ts->ev[i].is_id || ts->ev[i].is_fence)
			continue;
		first = ts->ev[i].r.pfn >> VB_TEST_CHUNK_SHIFT;
		last = (ts->ev[i].r.pfn + ts->ev[i].r.nr_pages - 1) >>
		       VB_TEST_CHUNK_SHIFT;
		/* Coalesced ranges may join chunks; each must be fenced. */
		for (; first <= last; first++)
			KUNIT_EXPECT_TRUE_MSG(test, vb_even_chunk(first),
					      "pfn %lu hinted in chunk %lu",
					      ts->ev[i].r.pfn, first);
	}
	/* Free blocks in odd chunks were read and left out. */
	KUNIT_EXPECT_GT(test, ctx->s.unfenced_pages, 0ULL);
	KUNIT_EXPECT_GT(test, ctx->s.pages, 0ULL);
}

/*
 * A fence in parts: a pass of the walk after each, hinting only what that
 * part covered, and nothing counted unfenced for a window another part
 * covers.
 */
static void session_walks_once_per_part_of_the_fence(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);
	unsigned long first, last, in_part[2] = { 0, 0 };
	unsigned int i;

	vb_arm_fence_in_two_parts(test, ctx);
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_COMPLETED);
	KUNIT_EXPECT_EQ(test, ts->parts, 2U);
	KUNIT_EXPECT_EQ(test, ctx->s.passes, 2U);
	for (i = 0; i < ts->nr_ev; i++) {
		if (ts->ev[i].is_id || ts->ev[i].is_fence)
			continue;
		KUNIT_ASSERT_TRUE(test, ts->ev[i].part == 1 ||
				  ts->ev[i].part == 2);
		first = ts->ev[i].r.pfn >> VB_TEST_CHUNK_SHIFT;
		last = (ts->ev[i].r.pfn + ts->ev[i].r.nr_pages - 1) >>
		       VB_TEST_CHUNK_SHIFT;
		/* Part 1 covered the even chunks, part 2 the odd ones. */
		for (; first <= last; first++)
			KUNIT_EXPECT_EQ_MSG(test, (unsigned int)(first & 1),
					    ts->ev[i].part - 1,
					    "pfn %lu hinted in chunk %lu after part %u",
					    ts->ev[i].r.pfn, first,
					    ts->ev[i].part);
		in_part[ts->ev[i].part - 1] += ts->ev[i].r.nr_pages;
	}
	KUNIT_EXPECT_GT(test, in_part[0], 0UL);
	KUNIT_EXPECT_GT(test, in_part[1], 0UL);
	KUNIT_EXPECT_EQ(test, ctx->s.unfenced_pages, 0ULL);
	KUNIT_EXPECT_TRUE(test, vb_last_is_stop(ts));
}

static void session_ends_without_ranges_when_fence_times_out(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	vb_arm_fence(test, ctx, vb_every_chunk);
	ts->fence_err = -ETIMEDOUT;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), VB_HINT_END_TIMEOUT);
	KUNIT_EXPECT_EQ(test, vb_nr_ranges(ts), 0U);
	/* Nothing more goes to a queue the device does not empty. */
	KUNIT_EXPECT_EQ(test, vb_count_id(ts, VIRTIO_BALLOON_CMD_ID_STOP), 0U);
}

static void session_ends_without_ranges_when_verdict_turns_in_fence(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	enum vb_hint_verdict v = vb_param_verdict(test);
	struct vb_test_sink *ts = vb_prepare(ctx, v);

	vb_arm_fence(test, ctx, vb_every_chunk);
	ts->fence_err = -ECANCELED;
	KUNIT_EXPECT_EQ(test, vb_run(ctx), vb_hint_end_of(v));
	KUNIT_EXPECT_EQ(test, vb_nr_ranges(ts), 0U);
	KUNIT_EXPECT_TRUE(test, vb_last_is_stop(ts));
}

/* Windows of 16 pages at 0, 16 and 32, and one of 16 at 64 after a gap. */
static const struct vb_fence_window vb_test_windows[] = {
	{ 0, 16 }, { 16, 32 }, { 32, 48 }, { 64, 80 },
};

static void keep_fenced_keeps_order_and_counts_the_rest(struct kunit *test)
{
	unsigned long map = BIT(0) | BIT(2) | BIT(3), wanted = 0;
	struct vb_hint_fenced fenced = {
		.win = vb_test_windows, .nr_win = ARRAY_SIZE(vb_test_windows),
		.map = &map, .wanted = &wanted,
	};
	struct vb_hint_range r[] = {
		{ .pfn = 0, .nr_pages = 16 },	/* window 0 */
		{ .pfn = 16, .nr_pages = 8 },	/* window 1: out */
		{ .pfn = 40, .nr_pages = 2 },	/* window 2 */
		{ .pfn = 48, .nr_pages = 4 },	/* in no window */
		{ .pfn = 3, .nr_pages = 1 },	/* window 0 */
	};
	u64 dropped = 0;

	KUNIT_ASSERT_EQ(test, vb_hint_keep_fenced(&fenced, r, ARRAY_SIZE(r),
						  &dropped), 3U);
	KUNIT_EXPECT_EQ(test, r[0].pfn, 0UL);
	KUNIT_EXPECT_EQ(test, r[1].pfn, 40UL);
	KUNIT_EXPECT_EQ(test, r[2].pfn, 3UL);
	KUNIT_EXPECT_EQ(test, dropped, 12ULL);
	/* The next fence looks for a probe where free memory went unhinted. */
	KUNIT_EXPECT_EQ(test, wanted, BIT(1));
}

/*
 * A range in a window another pass fences is that pass's: neither hinted
 * nor counted, nor wanted; a range that also touches a window no pass
 * fences is counted.
 */
static void keep_fenced_leaves_other_passes_their_windows(struct kunit *test)
{
	unsigned long map = BIT(0), other = BIT(1) | BIT(3), wanted = 0;
	struct vb_hint_fenced fenced = {
		.win = vb_test_windows, .nr_win = ARRAY_SIZE(vb_test_windows),
		.map = &map, .other = &other, .wanted = &wanted,
	};
	struct vb_hint_range r[] = {
		{ .pfn = 16, .nr_pages = 8 },	/* window 1: another pass */
		{ .pfn = 8, .nr_pages = 16 },	/* windows 0 and 1 */
		{ .pfn = 0, .nr_pages = 4 },	/* window 0 */
		{ .pfn = 24, .nr_pages = 16 },	/* windows 1 and 2: out */
		{ .pfn = 64, .nr_pages = 2 },	/* window 3: another pass */
	};
	u64 dropped = 0;

	KUNIT_ASSERT_EQ(test, vb_hint_keep_fenced(&fenced, r, ARRAY_SIZE(r),
						  &dropped), 1U);
	KUNIT_EXPECT_EQ(test, r[0].pfn, 0UL);
	KUNIT_EXPECT_EQ(test, dropped, 16ULL);
	KUNIT_EXPECT_EQ(test, wanted, BIT(2));
}

/* A range over several windows is hinted only if every one is fenced. */
static void keep_fenced_needs_every_window_a_range_spans(struct kunit *test)
{
	unsigned long map = BIT(0) | BIT(2) | BIT(3), wanted = 0;
	struct vb_hint_fenced fenced = {
		.win = vb_test_windows, .nr_win = ARRAY_SIZE(vb_test_windows),
		.map = &map, .wanted = &wanted,
	};
	struct vb_hint_range r[] = {
		{ .pfn = 8, .nr_pages = 16 },	/* windows 0 and 1 */
		{ .pfn = 40, .nr_pages = 16 },	/* window 2 and the gap */
		{ .pfn = 32, .nr_pages = 16 },	/* window 2, whole */
	};
	u64 dropped = 0;

	map |= BIT(1);
	KUNIT_ASSERT_EQ(test, vb_hint_keep_fenced(&fenced, r, 1, &dropped), 1U);
	map &= ~BIT(1);
	r[0] = (struct vb_hint_range){ .pfn = 8, .nr_pages = 16 };
	KUNIT_ASSERT_EQ(test, vb_hint_keep_fenced(&fenced, r, ARRAY_SIZE(r),
						  &dropped), 1U);
	KUNIT_EXPECT_EQ(test, r[0].pfn, 32UL);
	KUNIT_EXPECT_EQ(test, dropped, 32ULL);
	KUNIT_EXPECT_EQ(test, wanted, BIT(1));
}

static void end_of_err_without_turned_verdict_is_an_error(struct kunit *test)
{
	struct vb_session_ctx *ctx = test->priv;
	struct vb_test_sink *ts = vb_prepare(ctx, VB_HINT_GO);

	KUNIT_EXPECT_EQ(test, vb_hint_end_of_err(&ts->sink, VB_TEST_ID,
						 -ECANCELED),
			VB_HINT_END_ERROR);
	KUNIT_EXPECT_EQ(test, vb_hint_end_of_err(&ts->sink, VB_TEST_ID,
						 -ETIMEDOUT),
			VB_HINT_END_TIMEOUT);
	KUNIT_EXPECT_EQ(test, vb_hint_end_of_err(&ts->sink, VB_TEST_ID, -ENOSPC),
			VB_HINT_END_ERROR);
}

static void end_of_names_every_verdict(struct kunit *test)
{
	static const struct {
		enum vb_hint_verdict v;
		enum vb_hint_end end;
	} map[] = {
		{ VB_HINT_GO, VB_HINT_END_COMPLETED },
		{ VB_HINT_STOP, VB_HINT_END_STOP },
		{ VB_HINT_DONE, VB_HINT_END_DONE },
		{ VB_HINT_NEWER, VB_HINT_END_NEWER },
		{ VB_HINT_DISABLED, VB_HINT_END_DISABLED },
		{ VB_HINT_REMOVED, VB_HINT_END_REMOVED },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++)
		KUNIT_EXPECT_EQ(test, vb_hint_end_of(map[i].v), map[i].end);
	for (i = 0; i < VB_HINT_END_MAX; i++)
		KUNIT_EXPECT_NOT_NULL_MSG(test, vb_hint_end_names[i],
					  "end %u has no name", i);
}

static void id_is_new_only_for_request_ids(struct kunit *test)
{
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(0, VIRTIO_BALLOON_CMD_ID_STOP));
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(0, VIRTIO_BALLOON_CMD_ID_DONE));
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(VB_TEST_ID,
						   VIRTIO_BALLOON_CMD_ID_DONE));
	KUNIT_EXPECT_TRUE(test, vb_hint_id_is_new(0, VB_TEST_ID));
	KUNIT_EXPECT_TRUE(test, vb_hint_id_is_new(0, 2));
	KUNIT_EXPECT_TRUE(test, vb_hint_id_is_new(VB_TEST_ID, VB_TEST_ID + 1));
	/* QEMU's ids wrap back to the minimum. */
	KUNIT_EXPECT_TRUE(test, vb_hint_id_is_new(U32_MAX, VB_TEST_ID));
}

static void id_is_new_rejects_the_same_id_twice(struct kunit *test)
{
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(VB_TEST_ID, VB_TEST_ID));
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(2, 2));
	KUNIT_EXPECT_FALSE(test, vb_hint_id_is_new(U32_MAX, U32_MAX));
}

static struct kunit_case vb_hint_session_cases[] = {
	KUNIT_CASE(session_queues_marker_first_and_stop_last),
	KUNIT_CASE(session_asks_the_device_before_every_batch),
	KUNIT_CASE(session_kicks_after_every_element),
	KUNIT_CASE(session_counts_the_pages_it_queued),
	KUNIT_CASE_PARAM(session_queues_nothing_when_verdict_turned_before,
			 vb_verdict_gen_params),
	KUNIT_CASE_PARAM(session_drops_the_batch_read_when_verdict_turns,
			 vb_verdict_gen_params),
	KUNIT_CASE_PARAM(session_queues_nothing_when_verdict_turns_in_full_queue,
			 vb_verdict_gen_params),
	KUNIT_CASE_PARAM(session_queues_nothing_when_verdict_turns_before_marker_fits,
			 vb_verdict_gen_params),
	KUNIT_CASE(session_queues_no_range_after_verdict_turns_at_any_check),
	KUNIT_CASE(session_times_out_when_device_never_drains),
	KUNIT_CASE(session_times_out_when_marker_never_fits),
	KUNIT_CASE(session_fails_when_queue_refuses_a_buffer),
	KUNIT_CASE(session_fences_after_marker_and_before_any_range),
	KUNIT_CASE(session_hints_only_in_fenced_chunks),
	KUNIT_CASE(session_walks_once_per_part_of_the_fence),
	KUNIT_CASE(session_ends_without_ranges_when_fence_times_out),
	KUNIT_CASE_PARAM(session_ends_without_ranges_when_verdict_turns_in_fence,
			 vb_verdict_gen_params),
	KUNIT_CASE(keep_fenced_keeps_order_and_counts_the_rest),
	KUNIT_CASE(keep_fenced_needs_every_window_a_range_spans),
	KUNIT_CASE(keep_fenced_leaves_other_passes_their_windows),
	KUNIT_CASE(end_of_err_without_turned_verdict_is_an_error),
	KUNIT_CASE(end_of_names_every_verdict),
	KUNIT_CASE(id_is_new_only_for_request_ids),
	KUNIT_CASE(id_is_new_rejects_the_same_id_twice),
	{}
};

static struct kunit_suite vb_hint_session_suite = {
	.name = "vb_hint_session",
	.init = vb_session_init,
	.exit = vb_session_exit,
	.test_cases = vb_hint_session_cases,
};

kunit_test_suites(&vb_hint_session_suite);
