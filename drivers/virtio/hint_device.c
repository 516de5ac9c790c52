// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: free page hinting on the free page queue.
 *
 * The hint device: the sink of the hinting engine (hint_session.c) on the
 * free page queue, the fence on that queue (hint_fence.c keeps its probe
 * pages), the hint work item and the runner that folds a session's figures
 * into the statistics. (Over 400 lines: they all drive the one queue and
 * share its static helpers; apart, those helpers would become the driver's
 * interface.)
 *
 * The configuration-change callback counts the notification and queues the
 * hint work on the driver's own high-priority freezable workqueue. The work
 * reads the command id; for a new one it runs a session (hint_session.c)
 * whose sink is the free page queue: the start marker and the STOP id travel
 * as 4-byte out buffers, ranges as in buffers, many per element.
 *
 * The device shows the id in its configuration only while it waits for our
 * start marker; once it has taken the marker the field reads 0, as for STOP.
 * So the sink decides on a notification: our id still there, go on; DONE or
 * another id, stop; 0, stop unless the balloon's target changed, which also
 * notifies (continuing after a real STOP is harmless: the device drops hints
 * outside a round, and the next id shows up as a new value).
 */

#include <kunit/visibility.h>
#include <linux/device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

/* How long the device may leave the queue full before the session gives up. */
#define VB_HINT_ROOM_TIMEOUT	(5 * HZ)

static struct vb_device *vb_of_sink(struct vb_hint_sink *sink)
{
	return container_of(sink, struct vb_device, hint.sink);
}

static u32 vb_hint_read_cmd_id(struct vb_device *vb)
{
	u32 id;

	virtio_cread_le(vb->vdev, struct virtio_balloon_config,
			free_page_hint_cmd_id, &id);
	return id;
}

/*
 * Whether vb_hint_check() could answer anything but GO. Cheap and free of
 * configuration reads (which may sleep), so it can serve as a wait condition.
 */
static bool vb_hint_news(struct vb_device *vb)
{
	return vb_work_stopping(&vb->work) || !vb_hint_enabled() ||
	       atomic_read(&vb->hint.cfg_seq) != vb->hint.seen_seq;
}

VISIBLE_IF_KUNIT enum vb_hint_verdict vb_hint_check(struct vb_hint_sink *sink,
						    u32 id)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_dev *h = &vb->hint;
	u32 cmd, target;
	int seq;

	if (vb_work_stopping(&vb->work))
		return VB_HINT_REMOVED;
	if (!vb_hint_enabled())
		return VB_HINT_DISABLED;

	seq = atomic_read(&h->cfg_seq);
	if (seq == h->seen_seq)
		return VB_HINT_GO;

	/*
	 * A notification is consumed only when the session may go on: the
	 * session asks again after a cancelled send (vb_hint_end_of_err())
	 * and must hear the same verdict.
	 */
	cmd = vb_hint_read_cmd_id(vb);
	if (cmd != id) {
		if (cmd == VIRTIO_BALLOON_CMD_ID_DONE)
			return VB_HINT_DONE;
		if (cmd != VIRTIO_BALLOON_CMD_ID_STOP)
			return VB_HINT_NEWER;
		target = vb_read_target(vb);
		if (target == h->seen_target)
			return VB_HINT_STOP;
		h->seen_target = target;
	}
	h->seen_seq = seq;
	return VB_HINT_GO;
}

/*
 * The device can no longer act on the buffer with @token: if it carried an
 * owned chunk, the chunk's pages go back to the allocator.
 */
static void vb_hint_buffer_done(struct vb_device *vb, void *token)
{
	struct vb_owned_chunk *c = vb_owned_chunk_of(&vb->hint.owned, token);

	if (c)
		vb_owned_used(&vb->hint.owned, c);
}

/* Take back every buffer the device has used. */
static void vb_hint_reclaim(struct virtqueue *vq)
{
	unsigned int len;
	void *token;

	while ((token = virtqueue_get_buf(vq, &len)))
		vb_hint_buffer_done(vq->vdev->priv, token);
}

/*
 * Sleep until the device has used a buffer, @deadline passes, or (with
 * @news) vb_hint_news() has something, else the work is stopping. The
 * queue's interrupt is wanted only while we sleep. Returns whether a buffer
 * was used.
 */
static bool vb_hint_sleep(struct vb_device *vb, unsigned long deadline,
			  bool news)
{
	struct vb_hint_dev *h = &vb->hint;
	struct virtqueue *vq = h->vq;
	unsigned int opaque;
	bool used;

	opaque = virtqueue_enable_cb_prepare(vq);
	virtqueue_kick(vq);
	wait_event_timeout(h->room, virtqueue_poll(vq, opaque) ||
			   (news ? vb_hint_news(vb) :
				   vb_work_stopping(&vb->work)),
			   max_t(long, (long)(deadline - jiffies), 1));
	used = virtqueue_poll(vq, opaque);
	virtqueue_disable_cb(vq);
	return used;
}

/*
 * Sleep until the device has used a buffer, the verdict for @id turns, or
 * @deadline passes.
 */
static int vb_hint_wait_room(struct vb_device *vb, u32 id,
			     unsigned long deadline)
{
	struct vb_hint_dev *h = &vb->hint;
	bool used;

	h->session.queue_full_waits++;
	used = vb_hint_sleep(vb, deadline, true);
	if (vb_hint_check(&h->sink, id) != VB_HINT_GO)
		return -ECANCELED;
	if (!used && time_after_eq(jiffies, deadline))
		return -ETIMEDOUT;
	return 0;
}

/*
 * Queue one element, waiting a bounded time for room. @token comes back with
 * it once used: the device, or the owned chunk the element carries.
 */
static int vb_hint_add(struct vb_device *vb, struct scatterlist *sg,
		       unsigned int nents, bool out, u32 id, void *token)
{
	unsigned long deadline = jiffies + VB_HINT_ROOM_TIMEOUT;
	struct virtqueue *vq = vb->hint.vq;
	int err;

	for (;;) {
		vb_hint_reclaim(vq);
		if (out)
			err = virtqueue_add_outbuf(vq, sg, nents, token,
						   GFP_KERNEL);
		else
			err = virtqueue_add_inbuf(vq, sg, nents, token,
						  GFP_KERNEL);
		if (err != -ENOSPC)
			return err;
		err = vb_hint_wait_room(vb, id, deadline);
		if (err)
			return err;
	}
}

static int vb_hint_send_id(struct vb_hint_sink *sink, u32 id)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_dev *h = &vb->hint;
	__virtio32 *buf;
	struct scatterlist sg;

	/* Separate buffers: the marker may still be queued when STOP goes. */
	buf = id == VIRTIO_BALLOON_CMD_ID_STOP ? &h->stop_id : &h->start_id;
	*buf = cpu_to_virtio32(vb->vdev, id);
	sg_init_one(&sg, buf, sizeof(*buf));
	return vb_hint_add(vb, &sg, 1, true, h->session.id, vb);
}

/*
 * Queue @n ranges as hints under @id, VB_HINT_SG_MAX per element, or fewer on
 * a queue with fewer descriptors than that: the driver never uses indirect
 * descriptors (see vb_validate()), so an element takes one per range.
 */
static int vb_hint_queue_ranges(struct vb_device *vb,
				const struct vb_hint_range *r, unsigned int n,
				u32 id)
{
	struct vb_hint_dev *h = &vb->hint;
	unsigned int per_elem = min_t(unsigned int, VB_HINT_SG_MAX,
				      virtqueue_get_vring_size(h->vq));
	unsigned int i, j, k;
	int err;

	for (i = 0; i < n; i += k) {
		k = min_t(unsigned int, n - i, per_elem);
		sg_init_table(h->sg, k);
		for (j = 0; j < k; j++)
			sg_set_page(&h->sg[j], pfn_to_page(r[i + j].pfn),
				    r[i + j].nr_pages << PAGE_SHIFT, 0);
		err = vb_hint_add(vb, h->sg, k, false, id, vb);
		if (err)
			return err;
	}
	return 0;
}

static int vb_hint_send_ranges(struct vb_hint_sink *sink,
			       const struct vb_hint_range *r, unsigned int n)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_session *s = &vb->hint.session;
	int err;

	err = vb_hint_queue_ranges(vb, r, n, s->id);
	if (!err && !s->first_hint_ns)
		s->first_hint_ns = ktime_get_ns();
	return err;
}

static void vb_hint_kick(struct vb_hint_sink *sink)
{
	virtqueue_kick(vb_of_sink(sink)->hint.vq);
}

/* Whether the device has used everything queued. */
static bool vb_hint_idle(struct virtqueue *vq)
{
	vb_hint_reclaim(vq);
	return vq->num_free == virtqueue_get_vring_size(vq);
}

/*
 * Wait until the device has used everything queued: the marker buffers are
 * reused by every session, and a fence holds once its element is used.
 */
static int vb_hint_drain(struct vb_device *vb, u32 id)
{
	unsigned long deadline = jiffies + VB_HINT_ROOM_TIMEOUT;
	int err;

	while (!vb_hint_idle(vb->hint.vq)) {
		err = vb_hint_wait_room(vb, id, deadline);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Say once which memory no fence window can cover on this layout: it is
 * never hinted (hint_layout.c). The hint work writes what it reads.
 */
static void vb_hint_say_unsafe(struct vb_device *vb)
{
	struct vb_hint_fence *f = &vb->hint.fence;

	if (!f->unsafe_pages || vb->hint.unsafe_logged)
		return;
	vb->hint.unsafe_logged = true;
	dev_warn(&vb->vdev->dev,
		 "free page hinting leaves %lu MiB from %#llx unhinted: no window there is sure to lie in one dirty-log chunk of the host\n",
		 f->unsafe_pages >> (20 - PAGE_SHIFT),
		 (unsigned long long)PFN_PHYS(f->unsafe_pfn));
}

/*
 * The sink's fence, a part at a time: hint under @id every probe page we
 * hold, then take the missing ones in window order and hint each as soon as
 * it is ours, so that taking overlaps the device's round trip. Return once
 * the device has used every probe sent: when none is left to take, or
 * earlier if a pass of the walk is due (*@more is then set); QEMU applies
 * every hint of an element before it returns it. On success @fenced names
 * the windows this part covered.
 */
static int vb_hint_vq_fence(struct vb_hint_sink *sink, u32 id,
			    struct vb_hint_fenced *fenced, bool *more)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_dev *h = &vb->hint;
	struct vb_hint_session *s = &h->session;
	struct vb_hint_fence *f = &h->fence;
	struct vb_hint_range r[VB_HINT_SG_MAX];
	u64 start = ktime_get_ns(), taking;
	bool queued = false;
	unsigned int n;
	int err = 0;

	s->fence_ran = true;
	vb_fence_hold(f);
	for (;;) {
		while (!err && (n = vb_fence_ready(f, r, ARRAY_SIZE(r)))) {
			queued = true;
			err = vb_hint_queue_ranges(vb, r, n, id);
		}
		if (err)
			break;
		virtqueue_kick(h->vq);
		if (!vb_fence_to_take(f) ||
		    (vb_fence_pass_due(f) && vb_hint_idle(h->vq)))
			break;
		if (vb_hint_check(sink, id) != VB_HINT_GO) {
			err = -ECANCELED;
			break;
		}
		taking = ktime_get_ns();
		vb_fence_take_next(f);
		s->fence_take_ns += ktime_get_ns() - taking;
	}
	if (!err)
		err = vb_hint_drain(vb, id);
	*more = !err && vb_fence_to_take(f);
	s->fence_missing = f->missing;
	s->fence_windows += vb_fence_end(f, err ? NULL : fenced,
					 err && queued);
	s->fence_applied |= !err;
	s->fence_ns += ktime_get_ns() - start;
	return err;
}

static const struct vb_hint_sink_ops vb_hint_vq_ops = {
	.send_id = vb_hint_send_id,
	.send_ranges = vb_hint_send_ranges,
	.kick = vb_hint_kick,
	.check = vb_hint_check,
	.fence = vb_hint_vq_fence,
};

/*
 * Fold the figures of session @s, which ended with @end, into the
 * statistics: the one place a session's figures are written, by the hint
 * work alone. (That a session began, and for which id, is shown as it
 * begins: see vb_hint_run().)
 * @start: when the session began; @requested: when the last configuration
 * change before it was notified (the time from it to the first hints is
 * what the host sends in vain).
 */
static void vb_hint_account(struct vb_hint_dev *h,
			    const struct vb_hint_session *s,
			    enum vb_hint_end end, u64 start, u64 requested)
{
	struct vb_hint_stats *st = &h->stats;

	st->ended[end]++;
	st->last_pages = s->pages;
	st->last_ranges = s->ranges;
	st->last_unfenced_pages = s->unfenced_pages;
	st->total_pages += s->pages;
	st->total_ranges += s->ranges;
	st->last_lock_acquisitions = s->lock_acquisitions;
	st->max_lock_hold_ns = max(st->max_lock_hold_ns, s->lock_ns_max);
	st->queue_full_waits += s->queue_full_waits;
	st->walk_hotplug_restarts += s->hotplug_restarts;
	/* The last fence's figures stay until a session runs another. */
	if (s->fence_ran) {
		st->fences_applied += s->fence_applied;
		st->last_fence_windows = s->fence_windows;
		st->last_fence_missing = s->fence_missing;
		st->last_fence_us = div_u64(s->fence_ns, NSEC_PER_USEC);
		st->last_fence_take_us = div_u64(s->fence_take_ns,
						 NSEC_PER_USEC);
		st->last_fence_passes = s->passes;
	}
	st->last_duration_us = div_u64(ktime_get_ns() - start, NSEC_PER_USEC);
	st->last_first_hint_us = s->first_hint_ns ?
		div_u64(s->first_hint_ns - requested, NSEC_PER_USEC) : 0;
}

/* Queue owned chunk @c as one hint under @id; its token is the chunk. */
static int vb_hint_queue_chunk(struct vb_device *vb, struct vb_owned_chunk *c,
			       u32 id)
{
	struct scatterlist sg;

	sg_init_table(&sg, 1);
	sg_set_page(&sg, pfn_to_page(c->pfn), c->nr_pages << PAGE_SHIFT, 0);
	return vb_hint_add(vb, &sg, 1, false, id, c);
}

/*
 * Wait a bounded time for the device to use the chunks still in flight,
 * whatever it says of the run meanwhile: each goes back to the allocator as
 * it is used. What is still in flight afterwards goes back when the device
 * returns it (the hint work reclaims the queue whenever it runs) or is reset.
 */
static void vb_hint_owned_settle(struct vb_device *vb)
{
	unsigned long deadline = jiffies + VB_HINT_ROOM_TIMEOUT;
	struct vb_hint_dev *h = &vb->hint;

	for (;;) {
		vb_hint_reclaim(h->vq);
		if (!h->owned.owned_pages || vb_work_stopping(&vb->work) ||
		    time_after_eq(jiffies, deadline))
			return;
		vb_hint_sleep(vb, deadline, false);
	}
}

/*
 * A session of owned hints for @id, on a host that discards what it is
 * hinted: only chunks the driver took (hint_owned.c), at most
 * VB_OWNED_INFLIGHT at a time, each given back once the device has used its
 * element. Same protocol as vb_hint_session_run(): start marker first, STOP
 * last, nothing queued once the verdict turned.
 */
static enum vb_hint_end vb_hint_owned_session(struct vb_device *vb, u32 id)
{
	struct vb_hint_dev *h = &vb->hint;
	struct vb_hint_session *s = &h->session;
	struct vb_owned *o = &h->owned;
	struct vb_owned_chunk *c;
	enum vb_hint_verdict v;
	enum vb_hint_end end;
	int err = 0;

	v = vb_hint_check(&h->sink, id);
	if (v != VB_HINT_GO)
		return vb_hint_end_of(v);
	err = vb_hint_send_id(&h->sink, id);
	if (err)
		return vb_hint_end_of_err(&h->sink, id, err);
	virtqueue_kick(h->vq);

	vb_owned_begin(o);
	for (;;) {
		vb_hint_reclaim(h->vq);
		c = vb_owned_free_slot(o);
		if (!c) {
			err = vb_hint_wait_room(vb, id, jiffies +
						VB_HINT_ROOM_TIMEOUT);
			if (err)
				break;
			continue;
		}
		/* Checks the verdict before it takes anything. */
		if (!vb_owned_take(h, id, c))
			break;
		err = vb_hint_queue_chunk(vb, c, id);
		if (err) {
			/* Not queued: the device never saw it. */
			vb_owned_used(o, c);
			break;
		}
		virtqueue_kick(h->vq);
		if (!s->first_hint_ns)
			s->first_hint_ns = ktime_get_ns();
		s->ranges++;
		s->pages += c->nr_pages;
	}
	end = err ? vb_hint_end_of_err(&h->sink, id, err) :
		    vb_hint_end_of(vb_hint_check(&h->sink, id));
	if (end != VB_HINT_END_TIMEOUT && end != VB_HINT_END_ERROR &&
	    !vb_hint_send_id(&h->sink, VIRTIO_BALLOON_CMD_ID_STOP))
		virtqueue_kick(h->vq);
	vb_hint_owned_settle(vb);
	return end;
}

/* Run a session for the new @id; see vb_hint_account() for @requested. */
static void vb_hint_run(struct vb_device *vb, u32 id, u64 requested)
{
	struct vb_hint_dev *h = &vb->hint;
	struct vb_hint_session *s = &h->session;
	enum vb_hint_end end;
	u64 start = ktime_get_ns(), fence_start;
	int err;

	memset(s, 0, sizeof(*s));
	s->id = id;
	s->min_order = vb_hint_min_order();
	s->budget = vb_hint_budget();
	s->batch = h->batch;
	/* Shown at once: sysfs readers tell a session under way by them. */
	h->stats.started++;
	h->stats.last_cmd_id = id;

	err = vb_hint_drain(vb, id);
	if (!err && h->owned_mode) {
		h->nr_zones = vb_hint_collect_zones(h->zones, h->max_zones);
		end = vb_hint_owned_session(vb, id);
		h->stats.last_owned_peak_kib = h->owned.peak_pages <<
					       (PAGE_SHIFT - 10);
		h->stats.owned_take_failures = h->owned.take_failures;
		goto account;
	}
	if (!err) {
		vb_fence_settled(&h->fence);
		h->nr_zones = vb_hint_collect_zones(h->zones, h->max_zones);
		/* Candidates for probes, before QEMU waits for hints. */
		fence_start = ktime_get_ns();
		err = vb_fence_prepare(h, id);
		s->fence_ns = ktime_get_ns() - fence_start;
		s->fence_take_ns = s->fence_ns;
	}
	if (err) {
		end = vb_hint_end_of_err(&h->sink, id, err);
	} else {
		vb_hint_say_unsafe(vb);
		vb_hint_cursor_init(&h->cursor, h->zones, h->nr_zones,
				    s->min_order);
		end = vb_hint_session_run(s, &h->cursor, &h->sink);
		s->hotplug_restarts = h->cursor.hotplug_restarts;
	}

account:
	vb_hint_account(h, s, end, start, requested);
	if (end == VB_HINT_END_TIMEOUT || end == VB_HINT_END_ERROR)
		dev_err_ratelimited(&vb->vdev->dev,
				    "free page hinting for id %#x failed (%s): the device did not take the hints\n",
				    id, vb_hint_end_names[end]);
	else
		dev_dbg(&vb->vdev->dev, "hint id %#x: %s, %llu pages in %llu ranges, fence %llu us over %llu windows, %u passes, first hints after %llu us\n",
			id, vb_hint_end_names[end], s->pages, s->ranges,
			h->stats.last_fence_us, h->stats.last_fence_windows,
			s->passes, h->stats.last_first_hint_us);
}

/*
 * The host's migration is over (DONE): give the fence's probes back, unless
 * a failed fence may still have some queued.
 */
static void vb_hint_done(struct vb_device *vb)
{
	if (vb_hint_idle(vb->hint.vq))
		vb_fence_settled(&vb->hint.fence);
	vb_fence_release(&vb->hint.fence);
}

static void vb_hint_work(struct work_struct *work)
{
	struct vb_device *vb = container_of(work, struct vb_device,
					    hint.work);
	struct vb_hint_dev *h = &vb->hint;
	u64 requested = READ_ONCE(h->requested_ns);
	u32 id;

	vb_work_begin(&vb->work, VB_WAKEUP_HINT);
	/* Owned chunks the device returned since the last session go back. */
	vb_hint_reclaim(h->vq);
	/* Notifications from here on are the session's to look at. */
	h->seen_seq = atomic_read(&h->cfg_seq);
	h->seen_target = vb_read_target(vb);
	id = vb_hint_read_cmd_id(vb);
	if (id == VIRTIO_BALLOON_CMD_ID_DONE) {
		vb_hint_done(vb);
	} else if (vb_hint_id_is_new(h->last_id, id)) {
		h->last_id = id;
		if (vb_hint_enabled())
			vb_hint_run(vb, id, requested);
		else
			h->stats.skipped++;
	}
	vb_work_end(&vb->work);
}

void vb_hint_config_changed(struct vb_device *vb)
{
	struct vb_hint_dev *h = &vb->hint;

	if (!h->vq)
		return;
	WRITE_ONCE(h->requested_ns, ktime_get_ns());
	atomic_inc(&h->cfg_seq);
	wake_up(&h->room);
	vb_queue_work(&vb->work, &h->work, VB_WAKEUP_HINT);
}

void vb_hint_vq_done(struct virtqueue *vq)
{
	struct vb_device *vb = vq->vdev->priv;

	wake_up(&vb->hint.room);
	/* Owned chunks the device is done with go back, session or not. */
	if (READ_ONCE(vb->hint.owned.owned_pages))
		vb_queue_work(&vb->work, &vb->hint.work, VB_WAKEUP_HINT);
}

/* Whether the device's free page hint requests are answered. */
bool vb_hint_on(struct vb_device *vb)
{
	return vb->hint.vq;
}

/*
 * Remove and freeze: end a running session (it sees the work stopping) and
 * wait for the hint work. Called after vb_stop_work().
 */
void vb_hint_stop(struct vb_device *vb)
{
	wake_up(&vb->hint.room);
	cancel_work_sync(&vb->hint.work);
}

/* Called by probe and restore once the queues exist. */
void vb_hint_start(struct vb_device *vb, struct virtqueue *vq)
{
	vb->hint.vq = vq;
	/*
	 * After restore the device may be a new one (hibernation resumed in a
	 * fresh QEMU), whose ids start again from the first: any id is new.
	 */
	vb->hint.last_id = 0;
	if (vq)
		virtqueue_disable_cb(vq);
}

/*
 * Remove and freeze, after the device was reset: nothing we queued can be
 * acted on any more, so the fence's probes go back.
 */
void vb_hint_reset(struct vb_device *vb)
{
	struct vb_hint_dev *h = &vb->hint;
	void *token;

	if (h->vq) {
		vb_hint_reclaim(h->vq);
		while ((token = virtqueue_detach_unused_buf(h->vq)))
			vb_hint_buffer_done(vb, token);
	}
	vb_fence_reset(&h->fence);
}

/*
 * Whether the device offers FREE_PAGE_HINT, taken or not: QEMU then has the
 * free page queue either way.
 */
bool vb_hint_offered(struct virtio_device *vdev)
{
	return vb_device_offers(vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
}

/*
 * Allocate what sessions need; the driver core publishes the statistics.
 * validate() has already declined the feature if vb_hint_blocker() objects;
 * say so here if the device offered it.
 */
int vb_hint_init(struct vb_device *vb)
{
	struct vb_hint_dev *h = &vb->hint;
	struct virtio_device *vdev = vb->vdev;
	const char *harm;
	int err;

	INIT_WORK(&h->work, vb_hint_work);
	init_waitqueue_head(&h->room);
	atomic_set(&h->cfg_seq, 0);
	h->sink.ops = &vb_hint_vq_ops;
	h->blocked_by = vb_hint_offered(vdev) ? vb_hint_blocker(&harm) : NULL;
	if (h->blocked_by)
		dev_info(&vdev->dev, "free page hinting off: %s%s\n",
			 h->blocked_by, harm);
	h->owned_why = vb_hint_owned_reason(vdev);
	h->owned_mode = h->owned_why;
	if (h->owned_mode &&
	    virtio_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		dev_info(&vdev->dev, "free page hinting with owned hints: %s, so a hinted page stays the driver's until the host is done with it\n",
			 h->owned_why);

	h->max_zones = num_possible_nodes() * MAX_NR_ZONES;
	h->zones = kcalloc(h->max_zones, sizeof(*h->zones), GFP_KERNEL);
	if (!h->zones)
		return -ENOMEM;
	h->batch = kcalloc(VB_HINT_BUDGET_MAX, sizeof(*h->batch), GFP_KERNEL);
	if (!h->batch) {
		err = -ENOMEM;
		goto err_free_zones;
	}
	err = vb_owned_init(&h->owned);
	if (err)
		goto err_free_batch;
	err = vb_hint_fence_init(&h->fence);
	if (err)
		goto err_owned_exit;
	return 0;

err_owned_exit:
	vb_owned_exit(&h->owned);
err_free_batch:
	kfree(h->batch);
err_free_zones:
	kfree(h->zones);
	return err;
}

void vb_hint_exit(struct vb_device *vb)
{
	vb_hint_fence_exit(&vb->hint.fence);
	vb_owned_exit(&vb->hint.owned);
	kfree(vb->hint.batch);
	kfree(vb->hint.zones);
}
