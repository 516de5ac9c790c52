// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: the balloon's pages.
 *
 * Inflation and deflation toward the device's target, the acknowledgments
 * of the inflate and deflate queues, the move of a balloon page by
 * compaction, and the release of what a device that stopped answering
 * still held.
 *
 * The resize work moves the balloon toward the device's target one message
 * (VB_PFNS_PER_MSG frames) at a time and queues itself again until the target
 * is reached, so that remove and freeze never wait long for it.
 *
 * Every page in the balloon is on vb->pages and counted in vb->num_pages; both
 * change only under vb->balloon_lock. A page leaves the balloon only after the
 * device has acknowledged the deflate message naming it (the guest may not
 * touch it before, whether or not MUST_TELL_HOST was negotiated), except at
 * teardown of a device that stopped answering, after its reset.
 */

#include <kunit/visibility.h>
#include <linux/delay.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_balloon_internal.h"

/* How long the device may take to acknowledge one message before we give up on it. */
#define VB_ACK_TIMEOUT		(30 * HZ)
/* Pause before retrying when the guest has no page to give. */
#define VB_NO_MEMORY_PAUSE_MS	200
/* Pause while compaction holds balloon pages isolated. */
#define VB_ISOLATED_WAIT_US	1000

void vb_balloon_ack(struct virtqueue *vq)
{
	struct vb_device *vb = vq->vdev->priv;

	wake_up(&vb->acked);
}

/* Whether a message may go to the device. */
static bool vb_queues_usable(struct vb_device *vb)
{
	lockdep_assert_held(&vb->balloon_lock);
	return !vb->broken && vb->vqs_ready;
}

/*
 * Hand the first @n entries of pfns[] to the device and wait until it has
 * used them. A device that does not answer in VB_ACK_TIMEOUT is marked broken:
 * its queue may still hold pfns[], so no further message is sent.
 */
static int vb_tell_host(struct vb_device *vb, struct virtqueue *vq,
			unsigned int n)
{
	struct scatterlist sg;
	unsigned int len;
	int err;

	lockdep_assert_held(&vb->balloon_lock);
	if (!vb_queues_usable(vb))
		return -EIO;

	sg_init_one(&sg, vb->pfns, sizeof(vb->pfns[0]) * n);
	err = virtqueue_add_outbuf(vq, &sg, 1, vb, GFP_KERNEL);
	if (err) {
		dev_err(&vb->vdev->dev, "cannot queue %s message: %d\n",
			vq->name, err);
		vb->broken = true;
		return err;
	}
	virtqueue_kick(vq);

	/* A device removed by surprise is broken: vb_down() wakes us. */
	if (!wait_event_timeout(vb->acked, virtqueue_get_buf(vq, &len) ||
				virtqueue_is_broken(vq), VB_ACK_TIMEOUT)) {
		dev_err(&vb->vdev->dev,
			"device did not acknowledge %s message in %u s; balloon stopped until the device is reset\n",
			vq->name, VB_ACK_TIMEOUT / HZ);
		vb->broken = true;
		return -ETIMEDOUT;
	}
	if (virtqueue_is_broken(vq)) {
		vb->broken = true;
		return -EIO;
	}
	return 0;
}

/* Append the device's 4 KiB frame numbers covering @page to pfns[]. */
VISIBLE_IF_KUNIT void vb_add_pfns(struct vb_device *vb, unsigned int *n, struct page *page)
{
	unsigned long pfn = page_to_pfn(page) <<
			    (PAGE_SHIFT - VIRTIO_BALLOON_PFN_SHIFT);
	unsigned int i;

	BUILD_BUG_ON(PAGE_SHIFT < VIRTIO_BALLOON_PFN_SHIFT);
	BUILD_BUG_ON(VB_PFNS_PER_MSG % VB_PAGES_PER_PAGE);
	for (i = 0; i < VB_PAGES_PER_PAGE; i++)
		vb->pfns[(*n)++] = cpu_to_virtio32(vb->vdev, pfn + i);
}

/*
 * Balloon pages leave the guest's managed memory, unless the device lets the
 * guest take them back on OOM: then they stay counted, as the guest may still
 * use them.
 */
static void vb_account(struct vb_device *vb, struct page *page, long delta)
{
	if (!virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		adjust_managed_page_count(page, delta);
}

/*
 * Move up to @want 4 KiB units from the guest into the balloon; returns how
 * many moved. Pages are allocated before the lock is taken, as allocation may
 * reclaim and sleep for a while.
 */
static unsigned int vb_inflate(struct vb_device *vb, unsigned int want)
{
	LIST_HEAD(new_pages);
	struct page *page;
	unsigned int n = 0;
	unsigned int i;

	want = min_t(unsigned int, want, VB_PFNS_PER_MSG);
	for (i = 0; i + VB_PAGES_PER_PAGE <= want; i += VB_PAGES_PER_PAGE) {
		page = balloon_page_alloc();
		if (!page) {
			dev_info_ratelimited(&vb->vdev->dev,
					     "guest has no free page for the balloon, retrying\n");
			msleep(VB_NO_MEMORY_PAUSE_MS);
			break;
		}
		list_add(&page->lru, &new_pages);
	}

	mutex_lock(&vb->balloon_lock);
	while ((page = list_first_entry_or_null(&new_pages, struct page,
						lru))) {
		list_del(&page->lru);
		if (!vb_queues_usable(vb)) {
			__free_page(page);
			continue;
		}
		balloon_page_enqueue(&vb->pages, page);
		vb_add_pfns(vb, &n, page);
		vb->num_pages += VB_PAGES_PER_PAGE;
		vb_account(vb, page, -1);
	}
	if (n)
		vb_tell_host(vb, vb->inflate_vq, n);
	mutex_unlock(&vb->balloon_lock);
	return n;
}

/* Give pages taken out of the balloon back to the guest's allocator. */
static void vb_release_pages(struct vb_device *vb, struct list_head *pages)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, pages, lru) {
		list_del(&page->lru);
		vb_account(vb, page, 1);
		put_page(page);
	}
}

/*
 * Move up to @want 4 KiB units from the balloon back to the guest; returns
 * how many moved. The device hears of the pages before the guest may use
 * them; if it does not answer they go back into the balloon, and the vmstat
 * counters never saw them leave.
 */
unsigned int vb_deflate(struct vb_device *vb, unsigned int want)
{
	LIST_HEAD(taken);
	struct page *page;
	unsigned int n = 0;

	mutex_lock(&vb->balloon_lock);
	/* Nothing to ask a device that cannot answer: leave the pages be. */
	if (!vb_queues_usable(vb))
		goto out;
	want = min3(want, vb->num_pages, (unsigned int)VB_PFNS_PER_MSG);
	/* None while compaction holds the remaining pages isolated. */
	if (!vb_balloon_take(&vb->pages, &taken, want / VB_PAGES_PER_PAGE))
		goto out;
	list_for_each_entry(page, &taken, lru)
		vb_add_pfns(vb, &n, page);

	if (vb_tell_host(vb, vb->deflate_vq, n)) {
		vb_balloon_return(&vb->pages, &taken);
		n = 0;
	} else {
		vb_balloon_deflated(&taken, n / VB_PAGES_PER_PAGE);
		vb->num_pages -= n;
		vb_release_pages(vb, &taken);
	}
out:
	mutex_unlock(&vb->balloon_lock);
	return n;
}

/* How many 4 KiB units the balloon must grow (positive) or shrink by. */
static s64 vb_towards_target(struct vb_device *vb)
{
	/* The balloon holds whole guest pages. */
	u32 target = ALIGN(vb_read_target(vb), VB_PAGES_PER_PAGE);
	s64 diff;

	mutex_lock(&vb->balloon_lock);
	diff = (s64)target - vb->num_pages;
	mutex_unlock(&vb->balloon_lock);
	return diff;
}

/* Whether the device stopped answering. */
static bool vb_broken(struct vb_device *vb)
{
	bool broken;

	mutex_lock(&vb->balloon_lock);
	broken = vb->broken;
	mutex_unlock(&vb->balloon_lock);
	return broken;
}

/*
 * Tell the device the balloon's size. Written under balloon_lock: the resize
 * work and the OOM notifier both report, and a value read before the other's
 * change must not land after it.
 */
void vb_report_actual(struct vb_device *vb)
{
	u32 actual;

	mutex_lock(&vb->balloon_lock);
	actual = vb->num_pages;
	virtio_cwrite_le(vb->vdev, struct virtio_balloon_config, actual,
			 &actual);
	mutex_unlock(&vb->balloon_lock);
}

void vb_resize_work(struct work_struct *work)
{
	struct vb_device *vb = container_of(work, struct vb_device,
					    resize_work);
	s64 diff;

	vb_work_begin(&vb->work, VB_WAKEUP_RESIZE);
	diff = vb_towards_target(vb);
	if (diff > 0)
		diff -= vb_inflate(vb, min_t(s64, diff, UINT_MAX));
	else if (diff < 0)
		diff += vb_deflate(vb, min_t(s64, -diff, UINT_MAX));
	vb_report_actual(vb);

	if (diff && !vb_broken(vb))
		vb_queue_work(&vb->work, &vb->resize_work, VB_WAKEUP_RESIZE);
	vb_work_end(&vb->work);
}

/* What is left to deflate through the device: 0 if it cannot be asked. */
static unsigned int vb_deflatable(struct vb_device *vb)
{
	unsigned int n;

	mutex_lock(&vb->balloon_lock);
	n = vb_queues_usable(vb) ? vb->num_pages : 0;
	mutex_unlock(&vb->balloon_lock);
	return n;
}

/*
 * Empty the balloon through the device. Pages that compaction holds isolated
 * come back to the list shortly; wait for them.
 */
void vb_deflate_all(struct vb_device *vb)
{
	unsigned int n;

	while ((n = vb_deflatable(vb))) {
		if (!vb_deflate(vb, n))
			usleep_range(VB_ISOLATED_WAIT_US,
				     2 * VB_ISOLATED_WAIT_US);
	}
	vb_report_actual(vb);
}

/*
 * After the reset of a device that stopped answering, the pages still in the
 * balloon are the guest's again: the device no longer acts on them. So is a
 * page that compaction moved out of the balloon without the device's
 * acknowledgment.
 */
void vb_release_unacked(struct vb_device *vb)
{
	LIST_HEAD(freed);
	struct page *page;
	unsigned int n = 0;

	mutex_lock(&vb->balloon_lock);
	while (vb->num_pages) {
		page = balloon_page_dequeue(&vb->pages);
		if (!page) {
			mutex_unlock(&vb->balloon_lock);
			usleep_range(VB_ISOLATED_WAIT_US,
				     2 * VB_ISOLATED_WAIT_US);
			mutex_lock(&vb->balloon_lock);
			continue;
		}
		list_add(&page->lru, &freed);
		vb->num_pages -= VB_PAGES_PER_PAGE;
		n += VB_PAGES_PER_PAGE;
	}
	if (vb->migrated_unacked) {
		/* Maybe still on the migration code's list: not ours to touch. */
		vb_account(vb, vb->migrated_unacked, 1);
		put_page(vb->migrated_unacked);
		vb->migrated_unacked = NULL;
		n += VB_PAGES_PER_PAGE;
	}
	vb_release_pages(vb, &freed);
	mutex_unlock(&vb->balloon_lock);
	if (n)
		dev_warn(&vb->vdev->dev,
			 "released %u unacknowledged balloon pages after reset\n",
			 n);
}

#if VB_BALLOON_MIGRATION
/*
 * Compaction moves a balloon page: the device hears that the new page
 * entered the balloon before it hears that the old one left, so it never
 * holds fewer pages than the guest thinks; then the new page joins the list
 * (vb_balloon_migrated(): the driver's job or the core's, by kernel). Gives
 * up (-EAGAIN) rather than wait for a resize in progress, and on a device
 * that stopped answering.
 *
 * If the device does not acknowledge either message, neither page may be
 * reused: the device may have taken the new one, and may still hold the old
 * one. Failing the migration would hand the new page back to its allocator
 * (6.1's compaction_free() ignores our reference). So the migration
 * succeeds, the new page stays in the balloon, and the old page is kept, with
 * a reference of ours taken before it is published, in migrated_unacked
 * until the device is reset. The failure marked the device broken, so there
 * is at most one such page. The migration code still has the old page on its
 * own list for a while after this returns: nothing here touches its ->lru.
 */
static int vb_migratepage(struct balloon_dev_info *info, struct page *newpage,
			  struct page *page, enum migrate_mode mode)
{
	struct vb_device *vb = container_of(info, struct vb_device, pages);
	unsigned int n = 0;
	int err;

	if (!mutex_trylock(&vb->balloon_lock))
		return -EAGAIN;
	if (!vb_queues_usable(vb) || WARN_ON_ONCE(vb->migrated_unacked)) {
		mutex_unlock(&vb->balloon_lock);
		return -EAGAIN;
	}

	vb_add_pfns(vb, &n, newpage);
	err = vb_tell_host(vb, vb->inflate_vq, n);
	if (!err) {
		n = 0;
		vb_add_pfns(vb, &n, page);
		err = vb_tell_host(vb, vb->deflate_vq, n);
	}
	if (err) {
		vb_account(vb, newpage, -1);
		/* Ours before anyone can see it: released by vb_release_unacked(). */
		get_page(page);
		vb->migrated_unacked = page;
		dev_warn(&vb->vdev->dev,
			 "page migration not acknowledged: pfn %#lx stays out of use until the device is reset\n",
			 page_to_pfn(page));
	} else if (page_zone(page) != page_zone(newpage)) {
		vb_account(vb, page, 1);
		vb_account(vb, newpage, -1);
	}
	mutex_unlock(&vb->balloon_lock);
	return vb_balloon_migrated(info, newpage, page);
}

void vb_compaction_init(struct vb_device *vb)
{
	vb->pages.migratepage = vb_migratepage;
}
#else
void vb_compaction_init(struct vb_device *vb)
{
}
#endif
