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

/*
 * Whether [@pfn, @end) lies wholly in fenced windows; if not, mark the
 * windows it touches wanted. A range may span several windows where they
 * are smaller than a free block or where a window ends at a cut.
 */
static bool vb_hint_range_fenced(const struct vb_hint_fenced *fenced,
				 unsigned long pfn, unsigned long end)
{
	long found = vb_fence_window_find(fenced->win, fenced->nr_win, pfn);
	unsigned long w;
	bool ok = true;

	if (found < 0)
		return false;
	for (w = found; ; w++) {
		if (!test_bit(w, fenced->map)) {
			ok = false;
			if (fenced->wanted)
				__set_bit(w, fenced->wanted);
		}
		if (end <= fenced->win[w].end_pfn)
			return ok;
		if (w + 1 == fenced->nr_win ||
		    fenced->win[w + 1].start_pfn != fenced->win[w].end_pfn)
			return false;	/* the rest is in no window */
	}
}

/*
 * Keep the ranges of @r that lie in fenced windows, in order; add the pages
 * of the others to *@dropped_pages. Returns how many were kept.
 */
unsigned int vb_hint_keep_fenced(const struct vb_hint_fenced *fenced,
				 struct vb_hint_range *r, unsigned int n,
				 u64 *dropped_pages)
{
	unsigned int i, kept = 0;

	for (i = 0; i < n; i++) {
		if (vb_hint_range_fenced(fenced, r[i].pfn,
					 r[i].pfn + r[i].nr_pages))
			r[kept++] = r[i];
		else
			*dropped_pages += r[i].nr_pages;
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

enum vb_hint_end vb_hint_session_run(struct vb_hint_session *s,
				     struct vb_hint_cursor *cur,
				     struct vb_hint_sink *sink)
{
	const struct vb_hint_sink_ops *ops = sink->ops;
	struct vb_hint_step step;
	enum vb_hint_verdict v;
	enum vb_hint_end end;
	unsigned int n, i;
	int err;

	v = ops->check(sink, s->id);
	if (v != VB_HINT_GO)
		return vb_hint_end_of(v);

	err = ops->send_id(sink, s->id);
	if (err)
		return vb_hint_end_of_err(sink, s->id, err);
	ops->kick(sink);

	end = VB_HINT_END_COMPLETED;
	if (ops->fence) {
		err = ops->fence(sink, s->id, &s->fenced);
		if (err)
			end = vb_hint_end_of_err(sink, s->id, err);
	}
	while (end == VB_HINT_END_COMPLETED && !cur->done) {
		n = vb_hint_walk_step(cur, s->budget, s->batch, &step);
		if (step.visited) {
			s->lock_acquisitions++;
			s->lock_ns_max = max(s->lock_ns_max, step.lock_ns);
		}

		v = ops->check(sink, s->id);
		if (v != VB_HINT_GO) {
			end = vb_hint_end_of(v);
			break;
		}
		if (n && ops->fence)
			n = vb_hint_keep_fenced(&s->fenced, s->batch, n,
						&s->unfenced_pages);
		if (n) {
			n = vb_hint_coalesce(s->batch, n);
			err = ops->send_ranges(sink, s->batch, n);
			if (err) {
				end = vb_hint_end_of_err(sink, s->id, err);
				break;
			}
			ops->kick(sink);
			s->ranges += n;
			for (i = 0; i < n; i++)
				s->pages += s->batch[i].nr_pages;
		}
		cond_resched();
	}

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
