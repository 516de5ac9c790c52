// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: free page hinting on the free page queue.
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
#include <linux/acpi.h>
#include <linux/device.h>
#include <linux/moduleparam.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <xen/xen.h>

#include "virtio_balloon_internal.h"

/* Ranges carried by one element of the free page queue. */
/* How long the device may leave the queue full before the session gives up. */
#define VB_HINT_ROOM_TIMEOUT	(5 * HZ)

static bool vb_hint_enabled = true;
static unsigned int vb_hint_min_order;
static unsigned int vb_hint_budget = VB_HINT_BUDGET_DEFAULT;
static unsigned int vb_hint_fence_mib = VB_HINT_FENCE_MIB_DEFAULT;
static int vb_host_discards = VB_HOST_DISCARDS_AUTO;

/* Parse an unsigned value in [min, max]; anything else leaves *kp->arg alone. */
static int vb_param_set_uint(const char *val, const struct kernel_param *kp,
			     unsigned int min, unsigned int max)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || v < min || v > max)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static int vb_param_set_min_order(const char *val,
				  const struct kernel_param *kp)
{
	return vb_param_set_uint(val, kp, 0, NR_PAGE_ORDERS - 1);
}

static int vb_param_set_budget(const char *val, const struct kernel_param *kp)
{
	return vb_param_set_uint(val, kp, 1, VB_HINT_BUDGET_MAX);
}

/* A power of two, no smaller than the largest free block. */
static int vb_param_set_fence_mib(const char *val,
				  const struct kernel_param *kp)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || !is_power_of_2(v) ||
	    v < VB_HINT_FENCE_MIB_MIN || v > VB_HINT_FENCE_MIB_MAX)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static const char * const vb_host_discards_names[] = {
	[VB_HOST_DISCARDS_AUTO] = "auto",
	[VB_HOST_DISCARDS_NO] = "no",
	[VB_HOST_DISCARDS_YES] = "yes",
};

static int vb_param_set_host_discards(const char *val,
				      const struct kernel_param *kp)
{
	int i = sysfs_match_string(vb_host_discards_names, val);

	if (i < 0)
		return -EINVAL;
	WRITE_ONCE(*(int *)kp->arg, i);
	return 0;
}

static int vb_param_get_host_discards(char *buf,
				      const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  vb_host_discards_names[READ_ONCE(*(int *)kp->arg)]);
}

/*
 * The kernel's bool parser reads only the first character ("yes please" is
 * true); take the usual spellings only, so a typo is refused, not guessed.
 */
static int vb_param_set_bool(const char *val, const struct kernel_param *kp)
{
	bool v;

	if (sysfs_streq(val, "1") || sysfs_streq(val, "Y") ||
	    sysfs_streq(val, "y") || sysfs_streq(val, "on"))
		v = true;
	else if (sysfs_streq(val, "0") || sysfs_streq(val, "N") ||
		 sysfs_streq(val, "n") || sysfs_streq(val, "off"))
		v = false;
	else
		return -EINVAL;
	WRITE_ONCE(*(bool *)kp->arg, v);
	return 0;
}

const struct kernel_param_ops vb_hinting_ops = {
	.set = vb_param_set_bool,
	.get = param_get_bool,
};

const struct kernel_param_ops vb_min_order_ops = {
	.set = vb_param_set_min_order,
	.get = param_get_uint,
};

const struct kernel_param_ops vb_budget_ops = {
	.set = vb_param_set_budget,
	.get = param_get_uint,
};

const struct kernel_param_ops vb_fence_mib_ops = {
	.set = vb_param_set_fence_mib,
	.get = param_get_uint,
};

const struct kernel_param_ops vb_host_discards_ops = {
	.set = vb_param_set_host_discards,
	.get = vb_param_get_host_discards,
};

module_param_cb(hinting, &vb_hinting_ops, &vb_hint_enabled, 0644);
MODULE_PARM_DESC(hinting, "Answer the host's free page hint requests (default: 1)");
module_param_cb(hint_min_order, &vb_min_order_ops, &vb_hint_min_order, 0644);
MODULE_PARM_DESC(hint_min_order, "Smallest free block hinted, as a page order (default: 0)");
module_param_cb(hint_lock_budget, &vb_budget_ops, &vb_hint_budget, 0644);
MODULE_PARM_DESC(hint_lock_budget,
		 "Free-list entries read per acquisition of a zone or per-CPU list lock, 1-"
		 __stringify(VB_HINT_BUDGET_MAX) " (default: "
		 __stringify(VB_HINT_BUDGET_DEFAULT) ")");
module_param_cb(hint_fence_mib, &vb_fence_mib_ops, &vb_hint_fence_mib, 0644);
MODULE_PARM_DESC(hint_fence_mib,
		 "Guest memory per probe page of the dirty-log fence, in MiB: a power of two no larger than the host's dirty-log clear chunk (QEMU: 1024 unless clear-bitmap-shift is below 18) (default: "
		 __stringify(VB_HINT_FENCE_MIB_DEFAULT) ")");
module_param_cb(host_discards_hints, &vb_host_discards_ops, &vb_host_discards,
		0444);
MODULE_PARM_DESC(host_discards_hints,
		 "Whether the host discards hinted memory at once (Firecracker), which rules out free page hinting: auto (detect Firecracker from ACPI), yes, no (default: auto)");

/* The fence's chunk size as a page order. */
unsigned int vb_hint_fence_order(void)
{
	return ilog2(READ_ONCE(vb_hint_fence_mib)) + 20 - PAGE_SHIFT;
}

/*
 * Whether the ACPI names of the platform are Firecracker's: FADT hypervisor
 * id "FIRECKVM", or OEM id "FIRECK" (@oem_id is 6 bytes, @hypervisor_id 8,
 * neither NUL-terminated).
 */
VISIBLE_IF_KUNIT bool vb_acpi_names_firecracker(const char *oem_id,
						const char *hypervisor_id)
{
	return !memcmp(hypervisor_id, "FIRECKVM", 8) ||
	       !memcmp(oem_id, "FIRECK", 6);
}

static bool vb_host_is_firecracker(void)
{
#ifdef CONFIG_ACPI
	if (!acpi_disabled)
		return vb_acpi_names_firecracker(acpi_gbl_FADT.header.oem_id,
						 (const char *)&acpi_gbl_FADT.hypervisor_id);
#endif
	return false;
}

/*
 * Why the queues would map hints for DMA, or NULL. A hint names pages the
 * driver does not own: under Xen, virtio rings go through the DMA API even
 * without ACCESS_PLATFORM, and a bounce buffer copied back on unmap would
 * write into pages the guest may have reused since.
 */
static const char *vb_hint_dma_blocker(void)
{
	if (xen_domain())
		return "Xen maps virtio buffers through the DMA API";
	return NULL;
}

/*
 * Why hinting cannot be offered on this guest, or NULL. A hinted page is not
 * sent, so after migration it holds zeros or older contents; that breaks any
 * guest that trusts the contents of free pages.
 */
const char *vb_hint_blocker(void)
{
	if (page_poisoning_enabled_static())
		return "page_poison";
	if (want_init_on_free())
		return "init_on_free";
	return vb_hint_dma_blocker() ?: vb_hint_host_blocker();
}

/*
 * Why the host rules hinting out, or NULL. A host that discards hinted
 * memory on receipt, without tracking the guest's writes, corrupts a page
 * that the guest reused between our read of the free lists and the host's
 * discard; the walk cannot keep pages out of the guest's reach until then.
 */
const char *vb_hint_host_blocker(void)
{
	switch (READ_ONCE(vb_host_discards)) {
	case VB_HOST_DISCARDS_YES:
		return "host_discards_hints=yes";
	case VB_HOST_DISCARDS_AUTO:
		if (vb_host_is_firecracker())
			return "Firecracker discards hinted memory";
		break;
	}
	return NULL;
}

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

static u32 vb_hint_read_target(struct vb_device *vb)
{
	u32 target;

	virtio_cread_le(vb->vdev, struct virtio_balloon_config, num_pages,
			&target);
	return target;
}

/*
 * Whether vb_hint_check() could answer anything but GO. Cheap and free of
 * configuration reads (which may sleep), so it can serve as a wait condition.
 */
static bool vb_hint_news(struct vb_device *vb)
{
	/* stopping is only a hint here: vb_stop_work() also cancels us. */
	return data_race(vb->stopping) || !READ_ONCE(vb_hint_enabled) ||
	       atomic_read(&vb->hint.cfg_seq) != vb->hint.seen_seq;
}

enum vb_hint_verdict vb_hint_check(struct vb_hint_sink *sink, u32 id)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_dev *h = &vb->hint;
	u32 cmd, target;
	int seq;

	/* Unlocked: a late look only delays the end, cancel_work_sync() waits. */
	if (data_race(vb->stopping))
		return VB_HINT_REMOVED;
	if (!READ_ONCE(vb_hint_enabled))
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
		target = vb_hint_read_target(vb);
		if (target == h->seen_target)
			return VB_HINT_STOP;
		h->seen_target = target;
	}
	h->seen_seq = seq;
	return VB_HINT_GO;
}

static void vb_hint_reclaim(struct virtqueue *vq)
{
	unsigned int len;

	while (virtqueue_get_buf(vq, &len))
		;
}

/*
 * Sleep until the device has used a buffer, the verdict for @id turns, or
 * @deadline passes. The queue's interrupt is wanted only while we sleep.
 */
static int vb_hint_wait_room(struct vb_device *vb, u32 id,
			     unsigned long deadline)
{
	struct vb_hint_dev *h = &vb->hint;
	struct virtqueue *vq = h->vq;
	unsigned int opaque;
	bool used;

	h->stats.queue_full_waits++;
	opaque = virtqueue_enable_cb_prepare(vq);
	virtqueue_kick(vq);
	wait_event_timeout(h->room,
			   virtqueue_poll(vq, opaque) || vb_hint_news(vb),
			   max_t(long, (long)(deadline - jiffies), 1));
	used = virtqueue_poll(vq, opaque);
	virtqueue_disable_cb(vq);

	if (vb_hint_check(&h->sink, id) != VB_HINT_GO)
		return -ECANCELED;
	if (!used && time_after_eq(jiffies, deadline))
		return -ETIMEDOUT;
	return 0;
}

/* Queue one element, waiting a bounded time for room. */
static int vb_hint_add(struct vb_device *vb, struct scatterlist *sg,
		       unsigned int nents, bool out, u32 id)
{
	unsigned long deadline = jiffies + VB_HINT_ROOM_TIMEOUT;
	struct virtqueue *vq = vb->hint.vq;
	int err;

	for (;;) {
		vb_hint_reclaim(vq);
		if (out)
			err = virtqueue_add_outbuf(vq, sg, nents, vb,
						   GFP_KERNEL);
		else
			err = virtqueue_add_inbuf(vq, sg, nents, vb,
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
	return vb_hint_add(vb, &sg, 1, true, h->session.id);
}

/*
 * Queue @n ranges as hints under @id, VB_HINT_SG_MAX per element, or fewer on
 * a queue with fewer descriptors than that: the driver never uses indirect
 * descriptors (see vb_validate()), so an element takes one per range.
 */
int vb_hint_queue_ranges(struct vb_device *vb, const struct vb_hint_range *r,
			 unsigned int n, u32 id)
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
		err = vb_hint_add(vb, h->sg, k, false, id);
		if (err)
			return err;
	}
	return 0;
}

static int vb_hint_send_ranges(struct vb_hint_sink *sink,
			       const struct vb_hint_range *r, unsigned int n)
{
	struct vb_device *vb = vb_of_sink(sink);
	struct vb_hint_dev *h = &vb->hint;
	int err;

	err = vb_hint_queue_ranges(vb, r, n, h->session.id);
	if (!err && !h->first_hint_ns)
		h->first_hint_ns = ktime_get_ns();
	return err;
}

static void vb_hint_kick(struct vb_hint_sink *sink)
{
	virtqueue_kick(vb_of_sink(sink)->hint.vq);
}

static const struct vb_hint_sink_ops vb_hint_vq_ops = {
	.send_id = vb_hint_send_id,
	.send_ranges = vb_hint_send_ranges,
	.kick = vb_hint_kick,
	.check = vb_hint_check,
	.fence = vb_hint_fence,
};

/*
 * Wait until the device has used everything queued: the marker buffers are
 * reused by every session, and a fence holds once its element is used.
 */
int vb_hint_drain(struct vb_device *vb, u32 id)
{
	unsigned long deadline = jiffies + VB_HINT_ROOM_TIMEOUT;
	struct virtqueue *vq = vb->hint.vq;
	int err;

	for (;;) {
		vb_hint_reclaim(vq);
		if (vq->num_free == virtqueue_get_vring_size(vq))
			return 0;
		err = vb_hint_wait_room(vb, id, deadline);
		if (err)
			return err;
	}
}

/*
 * @requested: when the last configuration change before the session was
 * notified; the time from it to the first hints is what the host sends in
 * vain.
 */
static void vb_hint_run(struct vb_device *vb, u32 id, u64 requested)
{
	struct vb_hint_dev *h = &vb->hint;
	struct vb_hint_session *s = &h->session;
	enum vb_hint_end end;
	u64 start = ktime_get_ns();
	int err;

	memset(s, 0, sizeof(*s));
	h->first_hint_ns = 0;
	s->id = id;
	s->min_order = READ_ONCE(vb_hint_min_order);
	s->budget = READ_ONCE(vb_hint_budget);
	s->batch = h->batch;
	h->stats.started++;
	h->stats.last_cmd_id = id;

	err = vb_hint_drain(vb, id);
	if (err) {
		end = vb_hint_end_of_err(&h->sink, id, err);
	} else {
		h->nr_zones = vb_hint_collect_zones(h->zones, h->max_zones);
		vb_hint_cursor_init(&h->cursor, h->zones, h->nr_zones,
				    s->min_order);
		end = vb_hint_session_run(s, &h->cursor, &h->sink);
		h->stats.walk_hotplug_restarts += h->cursor.hotplug_restarts;
	}

	h->stats.ended[end]++;
	h->stats.last_pages = s->pages;
	h->stats.last_ranges = s->ranges;
	h->stats.last_unfenced_pages = s->unfenced_pages;
	h->stats.total_pages += s->pages;
	h->stats.total_ranges += s->ranges;
	h->stats.last_duration_us = div_u64(ktime_get_ns() - start,
					    NSEC_PER_USEC);
	h->stats.last_first_hint_us = h->first_hint_ns ?
		div_u64(h->first_hint_ns - requested, NSEC_PER_USEC) : 0;
	h->stats.max_lock_hold_ns = max(h->stats.max_lock_hold_ns,
					s->lock_ns_max);
	if (end == VB_HINT_END_TIMEOUT || end == VB_HINT_END_ERROR)
		dev_err_ratelimited(&vb->vdev->dev,
				    "free page hinting for id %#x failed (%s): the device did not take the hints\n",
				    id, vb_hint_end_names[end]);
	else
		dev_dbg(&vb->vdev->dev, "hint id %#x: %s, %llu pages in %llu ranges, fence %llu us over %llu chunks, first hints after %llu us\n",
			id, vb_hint_end_names[end], s->pages, s->ranges,
			h->stats.last_fence_us, h->stats.last_fence_chunks,
			h->stats.last_first_hint_us);
}

void vb_hint_work(struct work_struct *work)
{
	struct vb_device *vb = container_of(work, struct vb_device,
					    hint.work);
	struct vb_hint_dev *h = &vb->hint;
	u64 requested = READ_ONCE(h->requested_ns);
	bool new_id;
	u32 id;

	vb_work_begin(vb, VB_WAKEUP_HINT);
	/* Notifications from here on are the session's to look at. */
	h->seen_seq = atomic_read(&h->cfg_seq);
	h->seen_target = vb_hint_read_target(vb);
	id = vb_hint_read_cmd_id(vb);
	new_id = vb_hint_id_is_new(h->last_id, id);
	if (h->fence_pending && READ_ONCE(vb_hint_enabled) && !new_id) {
		h->fence_pending = false;
		vb_hint_fence_prepare(vb);
	}
	if (new_id) {
		h->last_id = id;
		if (READ_ONCE(vb_hint_enabled))
			vb_hint_run(vb, id, requested);
		else
			h->stats.skipped++;
	}
	vb_work_end(vb);
}

void vb_hint_config_changed(struct vb_device *vb)
{
	struct vb_hint_dev *h = &vb->hint;

	if (!h->vq)
		return;
	WRITE_ONCE(h->requested_ns, ktime_get_ns());
	atomic_inc(&h->cfg_seq);
	wake_up(&h->room);
	vb_queue_work(vb, &h->work, VB_WAKEUP_HINT);
}

void vb_hint_vq_done(struct virtqueue *vq)
{
	struct vb_device *vb = vq->vdev->priv;

	wake_up(&vb->hint.room);
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
	if (vq) {
		virtqueue_disable_cb(vq);
		/* The first work item takes the fence's probe pages. */
		vb->hint.fence_pending = true;
	}
}

/* sysfs: /sys/bus/virtio/devices/virtioN/free_page_hint/ */

static struct vb_hint_dev *vb_hint_of_dev(struct device *dev)
{
	struct vb_device *vb = dev_to_virtio(dev)->priv;

	return &vb->hint;
}

static u64 vb_hint_stat_read(const u64 *stat)
{
	/* The hint work is the only writer; a reader may see a value mid-session. */
	return data_race(*stat);
}

#define VB_HINT_STAT_ATTR(_name, _field)				\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%llu\n",				\
			  vb_hint_stat_read(&vb_hint_of_dev(dev)->stats._field)); \
}									\
static DEVICE_ATTR_RO(_name)

VB_HINT_STAT_ATTR(sessions_started, started);
VB_HINT_STAT_ATTR(sessions_completed, ended[VB_HINT_END_COMPLETED]);
VB_HINT_STAT_ATTR(sessions_skipped, skipped);
VB_HINT_STAT_ATTR(aborted_stop, ended[VB_HINT_END_STOP]);
VB_HINT_STAT_ATTR(aborted_done, ended[VB_HINT_END_DONE]);
VB_HINT_STAT_ATTR(aborted_newer_id, ended[VB_HINT_END_NEWER]);
VB_HINT_STAT_ATTR(aborted_disabled, ended[VB_HINT_END_DISABLED]);
VB_HINT_STAT_ATTR(aborted_removed, ended[VB_HINT_END_REMOVED]);
VB_HINT_STAT_ATTR(aborted_timeout, ended[VB_HINT_END_TIMEOUT]);
VB_HINT_STAT_ATTR(aborted_error, ended[VB_HINT_END_ERROR]);
VB_HINT_STAT_ATTR(last_cmd_id, last_cmd_id);
VB_HINT_STAT_ATTR(last_pages, last_pages);
VB_HINT_STAT_ATTR(last_ranges, last_ranges);
VB_HINT_STAT_ATTR(total_pages, total_pages);
VB_HINT_STAT_ATTR(total_ranges, total_ranges);
VB_HINT_STAT_ATTR(last_duration_us, last_duration_us);
VB_HINT_STAT_ATTR(last_first_hint_us, last_first_hint_us);
VB_HINT_STAT_ATTR(max_lock_hold_ns, max_lock_hold_ns);
VB_HINT_STAT_ATTR(queue_full_waits, queue_full_waits);
VB_HINT_STAT_ATTR(fences_applied, fences_applied);
VB_HINT_STAT_ATTR(last_fence_chunks, last_fence_chunks);
VB_HINT_STAT_ATTR(last_fence_missing, last_fence_missing);
VB_HINT_STAT_ATTR(last_fence_us, last_fence_us);
VB_HINT_STAT_ATTR(last_unfenced_pages, last_unfenced_pages);
VB_HINT_STAT_ATTR(walk_hotplug_restarts, walk_hotplug_restarts);

static ssize_t status_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct vb_hint_dev *h = vb_hint_of_dev(dev);

	if (h->blocked_by)
		return sysfs_emit(buf, "off: %s\n", h->blocked_by);
	if (!h->vq)
		return sysfs_emit(buf, "off: not offered by the device\n");
	if (!READ_ONCE(vb_hint_enabled))
		return sysfs_emit(buf, "off: hinting=0\n");
	return sysfs_emit(buf, "on\n");
}
static DEVICE_ATTR_RO(status);

static struct attribute *vb_hint_attrs[] = {
	&dev_attr_status.attr,
	&dev_attr_sessions_started.attr,
	&dev_attr_sessions_completed.attr,
	&dev_attr_sessions_skipped.attr,
	&dev_attr_aborted_stop.attr,
	&dev_attr_aborted_done.attr,
	&dev_attr_aborted_newer_id.attr,
	&dev_attr_aborted_disabled.attr,
	&dev_attr_aborted_removed.attr,
	&dev_attr_aborted_timeout.attr,
	&dev_attr_aborted_error.attr,
	&dev_attr_last_cmd_id.attr,
	&dev_attr_last_pages.attr,
	&dev_attr_last_ranges.attr,
	&dev_attr_total_pages.attr,
	&dev_attr_total_ranges.attr,
	&dev_attr_last_duration_us.attr,
	&dev_attr_last_first_hint_us.attr,
	&dev_attr_max_lock_hold_ns.attr,
	&dev_attr_queue_full_waits.attr,
	&dev_attr_fences_applied.attr,
	&dev_attr_last_fence_chunks.attr,
	&dev_attr_last_fence_missing.attr,
	&dev_attr_last_fence_us.attr,
	&dev_attr_last_unfenced_pages.attr,
	&dev_attr_walk_hotplug_restarts.attr,
	NULL,
};

const struct attribute_group vb_hint_group = {
	.name = "free_page_hint",
	.attrs = vb_hint_attrs,
};

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
	const char *blocker = vb_hint_blocker();
	int err;

	INIT_WORK(&h->work, vb_hint_work);
	init_waitqueue_head(&h->room);
	atomic_set(&h->cfg_seq, 0);
	h->sink.ops = &vb_hint_vq_ops;
	h->blocked_by = vb_hint_offered(vdev) ? blocker : NULL;
	if (h->blocked_by && vb_hint_host_blocker())
		dev_info(&vdev->dev,
			 "free page hinting off: %s, and a page the guest reuses before the host discards it would be lost\n",
			 blocker);
	else if (h->blocked_by && vb_hint_dma_blocker())
		dev_info(&vdev->dev,
			 "free page hinting off: %s, and hinted pages are not the driver's to map\n",
			 blocker);
	else if (h->blocked_by)
		dev_info(&vdev->dev,
			 "free page hinting off: %s is on, and hinted pages would not keep their contents across migration\n",
			 blocker);

	h->max_zones = num_possible_nodes() * MAX_NR_ZONES;
	h->zones = kcalloc(h->max_zones, sizeof(*h->zones), GFP_KERNEL);
	if (!h->zones)
		return -ENOMEM;
	h->batch = kcalloc(VB_HINT_BUDGET_MAX, sizeof(*h->batch), GFP_KERNEL);
	if (!h->batch) {
		err = -ENOMEM;
		goto err_free_zones;
	}
	err = vb_hint_fence_init(&h->fence);
	if (err)
		goto err_free_batch;
	return 0;

err_free_batch:
	kfree(h->batch);
err_free_zones:
	kfree(h->zones);
	return err;
}

void vb_hint_exit(struct vb_device *vb)
{
	vb_hint_fence_exit(&vb->hint.fence);
	kfree(vb->hint.batch);
	kfree(vb->hint.zones);
}
