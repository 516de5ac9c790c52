// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: one free page hinting session, the command-id protocol.
 *
 * For a new id the session queues the start marker (the id itself, exactly
 * once), then the ranges the walk finds, then the STOP id. Before each batch
 * goes to the device the sink is asked whether the id still holds; a STOP,
 * DONE or newer id ends the session and the batch is thrown away. Every range
 * queued after the start marker was therefore read from the free lists after
 * the marker was queued, under an id the device still considered current when
 * the batch was collected. A range queued after the device has moved on lands
 * before the next id's marker, where the device drops it.
 *
 * With a fence, the walk starts only once the host has applied it, and only
 * ranges in the windows it covered are queued: each was read from the free
 * lists after the host cleared the dirty log of its window's chunk for this
 * round, so a write to it after the read is logged and the page sent again.
 * A fence may come in parts (the sink takes the probe pages it lacks one by
 * one, and the host applies each as it comes): the walk then runs one pass
 * per part, each hinting only the windows fenced since the last.
 */

#include <linux/bitops.h>
#include <linux/sched.h>

#include "virtio_balloon_hint.h"

const char * const vb_hint_end_names[VB_HINT_END_MAX] = {
	[VB_HINT_END_COMPLETED] = "completed",
	[VB_HINT_END_STOP] = "stop",
	[VB_HINT_END_DONE] = "done",
	[VB_HINT_END_NEWER] = "newer_id",
	[VB_HINT_END_DISABLED] = "disabled",
	[VB_HINT_END_REMOVED] = "removed",
	[VB_HINT_END_TIMEOUT] = "timeout",
	[VB_HINT_END_ERROR] = "error",
};

/*
 * Whether @id asks for a session: ids below the minimum are STOP and DONE,
 * and the start marker must go out only once per id (the device ends the
 * round when it sees its id a second time).
 */
bool vb_hint_id_is_new(u32 last, u32 id)
{
	return id >= VIRTIO_BALLOON_CMD_ID_DONE + 1 && id != last;
}

/* What becomes of a walked range when the walk's pass has a fence. */
enum vb_hint_fate {
	VB_HINT_KEEP,		/* wholly in windows of this pass: hint it */
	VB_HINT_OTHER_PASS,	/* another pass of the session hints it */
	VB_HINT_UNFENCED,	/* no pass may: left out */
};

/* Window @w is fenced by no pass: the next session looks for a probe there. */
static enum vb_hint_fate vb_hint_unfenced(const struct vb_hint_fenced *fenced,
					  unsigned long w)
{
	if (fenced->wanted)
		__set_bit(w, fenced->wanted);
	return VB_HINT_UNFENCED;
}

/*
 * The fate of [@pfn, @end); a range that touches a window no pass fences
 * marks it wanted. A range may span several windows where they are smaller
 * than a free block or where a window ends at a cut.
 */
static enum vb_hint_fate vb_hint_range_fate(const struct vb_hint_fenced *fenced,
					    unsigned long pfn,
					    unsigned long end)
{
	long found = vb_fence_window_find(fenced->win, fenced->nr_win, pfn);
	enum vb_hint_fate fate = VB_HINT_KEEP;
	unsigned long w;

	if (found < 0)
		return VB_HINT_UNFENCED;
	for (w = found; ; w++) {
		if (!test_bit(w, fenced->map)) {
			if (!fenced->other || !test_bit(w, fenced->other))
				fate = vb_hint_unfenced(fenced, w);
			else if (fate == VB_HINT_KEEP)
				fate = VB_HINT_OTHER_PASS;
		}
		if (end <= fenced->win[w].end_pfn)
			return fate;
		if (w + 1 == fenced->nr_win ||
		    fenced->win[w + 1].start_pfn != fenced->win[w].end_pfn)
			return VB_HINT_UNFENCED;	/* the rest is in no window */
	}
}

/*
 * Keep the ranges of @r that lie in windows of this pass, in order; add the
 * pages of those no pass may hint to *@dropped_pages. Returns how many were
 * kept.
 */
unsigned int vb_hint_keep_fenced(const struct vb_hint_fenced *fenced,
				 struct vb_hint_range *r, unsigned int n,
				 u64 *dropped_pages)
{
	unsigned int i, kept = 0;

	for (i = 0; i < n; i++) {
		switch (vb_hint_range_fate(fenced, r[i].pfn,
					   r[i].pfn + r[i].nr_pages)) {
		case VB_HINT_KEEP:
			r[kept++] = r[i];
			break;
		case VB_HINT_OTHER_PASS:
			break;
		case VB_HINT_UNFENCED:
			*dropped_pages += r[i].nr_pages;
			break;
		}
	}
	return kept;
}

/* How a session ends when the sink's verdict is @v. */
enum vb_hint_end vb_hint_end_of(enum vb_hint_verdict v)
{
	switch (v) {
	case VB_HINT_STOP:
		return VB_HINT_END_STOP;
	case VB_HINT_DONE:
		return VB_HINT_END_DONE;
	case VB_HINT_NEWER:
		return VB_HINT_END_NEWER;
	case VB_HINT_DISABLED:
		return VB_HINT_END_DISABLED;
	case VB_HINT_REMOVED:
		return VB_HINT_END_REMOVED;
	case VB_HINT_GO:
		break;
	}
	return VB_HINT_END_COMPLETED;
}

/* How a session ends when the sink returned @err. */
enum vb_hint_end vb_hint_end_of_err(struct vb_hint_sink *sink, u32 id, int err)
{
	enum vb_hint_verdict v;

	switch (err) {
	case -ETIMEDOUT:
		return VB_HINT_END_TIMEOUT;
	case -ECANCELED:
		v = sink->ops->check(sink, id);
		return v == VB_HINT_GO ? VB_HINT_END_ERROR : vb_hint_end_of(v);
	default:
		return VB_HINT_END_ERROR;
	}
}

/* One pass of the walk over every free list, queueing what it may hint. */
static enum vb_hint_end vb_hint_session_walk(struct vb_hint_session *s,
					     struct vb_hint_cursor *cur,
					     struct vb_hint_sink *sink,
					     bool fenced)
{
	const struct vb_hint_sink_ops *ops = sink->ops;
	struct vb_hint_step step;
	enum vb_hint_verdict v;
	unsigned int n, i;
	int err;

	while (!cur->done) {
		n = vb_hint_walk_step(cur, s->budget, s->batch, &step);
		if (step.visited) {
			s->lock_acquisitions++;
			s->lock_ns_max = max(s->lock_ns_max, step.lock_ns);
		}

		v = ops->check(sink, s->id);
		if (v != VB_HINT_GO)
			return vb_hint_end_of(v);
		if (n && fenced)
			n = vb_hint_keep_fenced(&s->fenced, s->batch, n,
						&s->unfenced_pages);
		if (n) {
			n = vb_hint_coalesce(s->batch, n);
			err = ops->send_ranges(sink, s->batch, n);
			if (err)
				return vb_hint_end_of_err(sink, s->id, err);
			ops->kick(sink);
			s->ranges += n;
			for (i = 0; i < n; i++)
				s->pages += s->batch[i].nr_pages;
		}
		cond_resched();
	}
	return VB_HINT_END_COMPLETED;
}

/*
 * With a fence the walk runs in passes: the fence returns as soon as the
 * host has applied it over some windows, the pass hints those, and the next
 * call fences more while the host works through the pass's hints.
 */
enum vb_hint_end vb_hint_session_run(struct vb_hint_session *s,
				     struct vb_hint_cursor *cur,
				     struct vb_hint_sink *sink)
{
	const struct vb_hint_sink_ops *ops = sink->ops;
	enum vb_hint_verdict v;
	enum vb_hint_end end;
	bool more = false;
	int err;

	v = ops->check(sink, s->id);
	if (v != VB_HINT_GO)
		return vb_hint_end_of(v);

	err = ops->send_id(sink, s->id);
	if (err)
		return vb_hint_end_of_err(sink, s->id, err);
	ops->kick(sink);

	do {
		if (ops->fence) {
			err = ops->fence(sink, s->id, &s->fenced, &more);
			if (err) {
				end = vb_hint_end_of_err(sink, s->id, err);
				break;
			}
			if (s->passes)
				vb_hint_cursor_rewind(cur);
		}
		s->passes++;
		end = vb_hint_session_walk(s, cur, sink, ops->fence);
	} while (end == VB_HINT_END_COMPLETED && more);

	/*
	 * End the round. After STOP, DONE or a newer id the device ignores
	 * this; after a device that stopped taking buffers there is no room.
	 */
	if (end != VB_HINT_END_TIMEOUT && end != VB_HINT_END_ERROR) {
		if (!ops->send_id(sink, VIRTIO_BALLOON_CMD_ID_STOP))
			ops->kick(sink);
	}
	return end;
}
