// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for the free page queue's sink (hint_device.c): how it reads
 * the device's configuration to decide whether a session goes on.
 */

#include <kunit/test.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"
#include "balloon_test.h"

/*
 * vb_hint_check() against a device whose configuration space is a struct in
 * memory, showing what QEMU's shows: the id while it waits for the start
 * marker, 0 once it took it (and after STOP), 1 for DONE.
 */
#define VB_TEST_ID	0x80000005U

struct vb_check_ctx {
	struct vb_test_balloon tb;	/* first */
	struct virtio_config_ops config;
	struct virtio_balloon_config cfg;
	unsigned int reads;
};

static void vb_fake_get(struct virtio_device *vdev, unsigned int offset,
			void *buf, unsigned int len)
{
	struct vb_check_ctx *ctx = container_of(vdev, struct vb_check_ctx,
						tb.vdev);

	ctx->reads++;
	if (WARN_ON(offset + len > sizeof(ctx->cfg)))
		return;
	memcpy(buf, (u8 *)&ctx->cfg + offset, len);
}

static const struct vb_hint_sink_ops vb_check_ops = {
	.check = vb_hint_check,
};

static int vb_check_init(struct kunit *test)
{
	struct vb_check_ctx *ctx = vb_test_context(test, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	ctx->config.get = vb_fake_get;
	ctx->tb.vdev.config = &ctx->config;
	ctx->tb.vb->hint.sink.ops = &vb_check_ops;
	atomic_set(&ctx->tb.vb->hint.cfg_seq, 0);
	/* As vb_hint_work() leaves things when it starts a session. */
	ctx->cfg.num_pages = cpu_to_le32(256);
	ctx->cfg.free_page_hint_cmd_id = cpu_to_le32(VB_TEST_ID);
	ctx->tb.vb->hint.seen_target = 256;
	return 0;
}

/* The device changes its configuration and notifies. */
static void vb_device_shows(struct vb_check_ctx *ctx, u32 cmd_id, u32 target)
{
	ctx->cfg.free_page_hint_cmd_id = cpu_to_le32(cmd_id);
	ctx->cfg.num_pages = cpu_to_le32(target);
	atomic_inc(&ctx->tb.vb->hint.cfg_seq);
}

static enum vb_hint_verdict vb_check(struct vb_check_ctx *ctx)
{
	return vb_hint_check(&ctx->tb.vb->hint.sink, VB_TEST_ID);
}

static void check_goes_on_without_reading_when_nothing_changed(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	/* Without a notification the field is not even read. */
	ctx->cfg.free_page_hint_cmd_id = cpu_to_le32(VIRTIO_BALLOON_CMD_ID_DONE);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_GO);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_GO);
	KUNIT_EXPECT_EQ(test, ctx->reads, 0U);
}

static void check_goes_on_while_the_device_shows_our_id(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	vb_device_shows(ctx, VB_TEST_ID, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_GO);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_GO);
}

static void check_goes_on_when_only_the_target_changed(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	/* In START the field reads 0; a resize notifies all the same. */
	vb_device_shows(ctx, VIRTIO_BALLOON_CMD_ID_STOP, 512);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_GO);
	KUNIT_EXPECT_EQ(test, ctx->tb.vb->hint.seen_target, 512U);
}

static void check_ends_on_stop(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	vb_device_shows(ctx, VIRTIO_BALLOON_CMD_ID_STOP, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_STOP);
}

static void check_ends_on_done(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	vb_device_shows(ctx, VIRTIO_BALLOON_CMD_ID_DONE, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_DONE);
}

static void check_ends_on_a_newer_id(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	vb_device_shows(ctx, VB_TEST_ID + 1, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_NEWER);
}

/*
 * The session asks again after a send that the verdict cancelled
 * (vb_hint_end_of_err()): the answer must not have turned back to GO.
 */
static void check_keeps_its_verdict_when_asked_again(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	vb_device_shows(ctx, VB_TEST_ID + 1, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_NEWER);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_NEWER);

	vb_device_shows(ctx, VIRTIO_BALLOON_CMD_ID_STOP, 256);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_STOP);
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_STOP);
	KUNIT_EXPECT_EQ(test, vb_hint_end_of_err(&ctx->tb.vb->hint.sink, VB_TEST_ID,
						 -ECANCELED),
			VB_HINT_END_STOP);
}

static void check_ends_when_the_device_goes_away(struct kunit *test)
{
	struct vb_check_ctx *ctx = test->priv;

	ctx->tb.vb->work.stopping = true;
	KUNIT_EXPECT_EQ(test, vb_check(ctx), VB_HINT_REMOVED);
}

static struct kunit_case vb_hint_check_cases[] = {
	KUNIT_CASE(check_goes_on_without_reading_when_nothing_changed),
	KUNIT_CASE(check_goes_on_while_the_device_shows_our_id),
	KUNIT_CASE(check_goes_on_when_only_the_target_changed),
	KUNIT_CASE(check_ends_on_stop),
	KUNIT_CASE(check_ends_on_done),
	KUNIT_CASE(check_ends_on_a_newer_id),
	KUNIT_CASE(check_keeps_its_verdict_when_asked_again),
	KUNIT_CASE(check_ends_when_the_device_goes_away),
	{}
};

static struct kunit_suite vb_hint_check_suite = {
	.name = "vb_hint_check",
	.init = vb_check_init,
	.test_cases = vb_hint_check_cases,
};

kunit_test_suites(&vb_hint_check_suite);
