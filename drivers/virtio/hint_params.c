// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: what the user sees of free page hinting.
 *
 * The module parameters and their accessors, what rules hinting out on this
 * guest (poisoned or zeroed free pages, Xen's DMA mapping, a host that
 * discards hints), and the free_page_hint/ sysfs group: the statistics and
 * the status text.
 */

#include <kunit/visibility.h>
#include <linux/acpi.h>
#include <linux/device.h>
#include <linux/moduleparam.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <xen/xen.h>

#include "virtio_balloon_internal.h"

/* The module parameters; read with READ_ONCE() through the accessors below. */
static bool vb_param_hinting = true;
static unsigned int vb_param_min_order;
static unsigned int vb_param_budget = VB_HINT_BUDGET_DEFAULT;
static unsigned int vb_param_fence_mib = VB_HINT_FENCE_MIB_DEFAULT;
static int vb_param_host_discards = VB_HOST_DISCARDS_AUTO;

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

/*
 * A power of two, no smaller than the largest free block and no larger than
 * QEMU's default chunk: a larger window could straddle two chunks.
 */
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

static const struct kernel_param_ops vb_hinting_ops = {
	.set = vb_param_set_bool,
	.get = param_get_bool,
};

VISIBLE_IF_KUNIT const struct kernel_param_ops vb_min_order_ops = {
	.set = vb_param_set_min_order,
	.get = param_get_uint,
};

VISIBLE_IF_KUNIT const struct kernel_param_ops vb_budget_ops = {
	.set = vb_param_set_budget,
	.get = param_get_uint,
};

VISIBLE_IF_KUNIT const struct kernel_param_ops vb_fence_mib_ops = {
	.set = vb_param_set_fence_mib,
	.get = param_get_uint,
};

VISIBLE_IF_KUNIT const struct kernel_param_ops vb_host_discards_ops = {
	.set = vb_param_set_host_discards,
	.get = vb_param_get_host_discards,
};

module_param_cb(hinting, &vb_hinting_ops, &vb_param_hinting, 0644);
MODULE_PARM_DESC(hinting, "Answer the host's free page hint requests (default: 1)");
module_param_cb(hint_min_order, &vb_min_order_ops, &vb_param_min_order, 0644);
MODULE_PARM_DESC(hint_min_order, "Smallest free block hinted, as a page order (default: 0)");
module_param_cb(hint_lock_budget, &vb_budget_ops, &vb_param_budget, 0644);
MODULE_PARM_DESC(hint_lock_budget,
		 "Free-list entries read per acquisition of a zone or per-CPU list lock, 1-"
		 __stringify(VB_HINT_BUDGET_MAX) " (default: "
		 __stringify(VB_HINT_BUDGET_DEFAULT) ")");
module_param_cb(hint_fence_mib, &vb_fence_mib_ops, &vb_param_fence_mib, 0644);
MODULE_PARM_DESC(hint_fence_mib,
		 "Largest window of the dirty-log fence, in MiB: a power of two, "
		 __stringify(VB_HINT_FENCE_MIB_MIN) "-" __stringify(VB_HINT_FENCE_MIB_MAX)
		 ", no larger than the host's dirty-log clear chunk (QEMU: 1024 unless x-clear-bitmap-shift is below 18); the memory layout may make windows smaller (default: "
		 __stringify(VB_HINT_FENCE_MIB_DEFAULT) ")");
module_param_cb(host_discards_hints, &vb_host_discards_ops, &vb_param_host_discards,
		0444);
MODULE_PARM_DESC(host_discards_hints,
		 "Whether the host discards hinted memory at once (Firecracker), so that hints must be pages the driver owns until the host is done with them: auto (detect Firecracker from ACPI), yes, no (default: auto)");

bool vb_hint_enabled(void)
{
	return READ_ONCE(vb_param_hinting);
}

unsigned int vb_hint_min_order(void)
{
	return READ_ONCE(vb_param_min_order);
}

unsigned int vb_hint_budget(void)
{
	return READ_ONCE(vb_param_budget);
}

/* The fence's chunk size as a page order. */
unsigned int vb_hint_fence_order(void)
{
	return ilog2(READ_ONCE(vb_param_fence_mib)) + 20 - PAGE_SHIFT;
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
 * Why the host discards what it is hinted, or NULL. Such a host, which does
 * not track the guest's writes, corrupts a page that the guest reused between
 * our read of the free lists and the host's discard: there the driver hints
 * only pages it owns until the device has used them (hint_owned.c).
 */
static const char *vb_hint_discarding_host(void)
{
	switch (READ_ONCE(vb_param_host_discards)) {
	case VB_HOST_DISCARDS_YES:
		return "host_discards_hints=yes";
	case VB_HOST_DISCARDS_AUTO:
		if (vb_host_is_firecracker())
			return "Firecracker discards hinted memory";
		break;
	}
	return NULL;
}

/*
 * Why hinting cannot be offered on this guest, or NULL; with @harm, if not
 * NULL, set to what hinting would break, to follow the reason in the log. A
 * hinted page is not sent, so after migration it holds zeros or older
 * contents; that breaks any guest that trusts the contents of free pages.
 */
const char *vb_hint_blocker(const char **harm)
{
	const char *why, *what;

	why = vb_free_page_filler();
	what = " is on, and hinted pages would not keep their contents across migration";
	if (!why) {
		why = vb_hint_dma_blocker();
		what = ", and hinted pages are not the driver's to map";
	}
	if (harm)
		*harm = what;
	return why;
}

/*
 * Why hints must be pages the driver owns until the device has used them,
 * or NULL: the host discards hinted memory on receipt, or the device asks
 * the driver to wait for it (VB_F_HINT_WAIT_ON_ACK).
 */
const char *vb_hint_owned_reason(struct virtio_device *vdev)
{
	const char *why = vb_hint_discarding_host();

	if (!why && virtio_has_feature(vdev, VB_F_HINT_WAIT_ON_ACK))
		why = "the device offers HINT_WAIT_ON_ACK";
	return why;
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
VB_HINT_STAT_ATTR(last_lock_acquisitions, last_lock_acquisitions);
VB_HINT_STAT_ATTR(queue_full_waits, queue_full_waits);
VB_HINT_STAT_ATTR(fences_applied, fences_applied);
VB_HINT_STAT_ATTR(last_fence_windows, last_fence_windows);
VB_HINT_STAT_ATTR(last_fence_missing, last_fence_missing);
VB_HINT_STAT_ATTR(last_fence_us, last_fence_us);
VB_HINT_STAT_ATTR(last_fence_take_us, last_fence_take_us);
VB_HINT_STAT_ATTR(last_fence_passes, last_fence_passes);
VB_HINT_STAT_ATTR(last_owned_peak_kib, last_owned_peak_kib);
VB_HINT_STAT_ATTR(owned_take_failures, owned_take_failures);
VB_HINT_STAT_ATTR(last_unfenced_pages, last_unfenced_pages);
VB_HINT_STAT_ATTR(walk_hotplug_restarts, walk_hotplug_restarts);

/*
 * The fence's figures, written under its lock and read without it: a reader
 * sees a value from before or after a fence, and either is true.
 */
#define VB_FENCE_ATTR(_name, _expr)					\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	const struct vb_hint_fence *f = &vb_hint_of_dev(dev)->fence;	\
									\
	return sysfs_emit(buf, "%llu\n", (u64)(_expr));		\
}									\
static DEVICE_ATTR_RO(_name)

VB_FENCE_ATTR(fence_windows, READ_ONCE(f->nr_win));
VB_FENCE_ATTR(fence_probes, READ_ONCE(f->nr_probes));
VB_FENCE_ATTR(fence_window_min_kib, READ_ONCE(f->nr_win) ?
	      (PAGE_SIZE >> 10) << READ_ONCE(f->min_order) : 0);
VB_FENCE_ATTR(fence_unsafe_kib, READ_ONCE(f->unsafe_pages) * (PAGE_SIZE >> 10));
VB_FENCE_ATTR(fence_offline_refused, READ_ONCE(f->offline_refused));

static ssize_t owned_kib_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%lu\n",
			  READ_ONCE(vb_hint_of_dev(dev)->owned.owned_pages) *
			  (PAGE_SIZE >> 10));
}
static DEVICE_ATTR_RO(owned_kib);

static ssize_t status_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct vb_hint_dev *h = vb_hint_of_dev(dev);
	/* Written by the hint work under the fence lock; a stale read is harmless. */
	unsigned long unsafe = READ_ONCE(h->fence.unsafe_pages);
	unsigned long from = READ_ONCE(h->fence.unsafe_pfn);

	if (h->blocked_by)
		return sysfs_emit(buf, "off: %s\n", h->blocked_by);
	if (!h->vq)
		return sysfs_emit(buf, "off: not offered by the device\n");
	if (!vb_hint_enabled())
		return sysfs_emit(buf, "off: hinting=0\n");
	if (h->owned_mode)
		return sysfs_emit(buf, "on, owned hints: %s\n", h->owned_why);
	if (unsafe)
		return sysfs_emit(buf,
				  "on, except %lu MiB from %#llx: no safe fence window there\n",
				  unsafe >> (20 - PAGE_SHIFT),
				  (unsigned long long)PFN_PHYS(from));
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
	&dev_attr_last_lock_acquisitions.attr,
	&dev_attr_queue_full_waits.attr,
	&dev_attr_fences_applied.attr,
	&dev_attr_last_fence_windows.attr,
	&dev_attr_fence_windows.attr,
	&dev_attr_fence_probes.attr,
	&dev_attr_fence_window_min_kib.attr,
	&dev_attr_fence_unsafe_kib.attr,
	&dev_attr_fence_offline_refused.attr,
	&dev_attr_last_fence_missing.attr,
	&dev_attr_last_fence_us.attr,
	&dev_attr_last_fence_take_us.attr,
	&dev_attr_last_fence_passes.attr,
	&dev_attr_owned_kib.attr,
	&dev_attr_last_owned_peak_kib.attr,
	&dev_attr_owned_take_failures.attr,
	&dev_attr_last_unfenced_pages.attr,
	&dev_attr_walk_hotplug_restarts.attr,
	NULL,
};

const struct attribute_group vb_hint_group = {
	.name = "free_page_hint",
	.attrs = vb_hint_attrs,
};
