// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: the device core.
 *
 * Probe and remove, feature negotiation, queue set-up, configuration changes,
 * freeze and restore. Device callbacks only record what happened and queue
 * work on the driver's own workqueue; the work items re-read the device's
 * configuration and decide what to do.
 */

#include <linux/module.h>
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio_balloon_internal.h"

/*
 * Stop the work of every feature: no more is queued, then each item is
 * cancelled (a running hint session ends its round).
 */
static void vb_stop_all_work(struct vb_device *vb)
{
	vb_stop_work(&vb->work);
	vb_hint_stop(vb);
	cancel_work_sync(&vb->resize_work);
	cancel_work_sync(&vb->stats_work);
	vb_work_stopped(&vb->work);
}

static const char *vb_onoff(bool on)
{
	return on ? "on" : "off";
}

static void vb_config_changed(struct virtio_device *vdev)
{
	struct vb_device *vb = vdev->priv;

	vb_queue_work(&vb->work, &vb->resize_work, VB_WAKEUP_RESIZE);
	vb_hint_config_changed(vb);
}

/*
 * Ask for the queues the device has, in its order and without gaps. The
 * transport gives queue numbers only to named entries, in turn (in 6.1,
 * 6.12 and 7.3 alike: vp_find_vqs_msix() and _intx() skip an unnamed entry
 * without counting it), so a queue's number is its rank among the queues
 * asked for. An unnamed entry in the middle would not hold a number open: every queue
 * after it would get the device's number of the queue before it.
 *
 * QEMU creates a queue for each feature it offers, negotiated or not. When
 * validate() declined an offered FREE_PAGE_HINT (page_poison, init_on_free),
 * the free page queue is still asked for, and left unused, so that the
 * reporting queue after it gets the device's number for it; without it the
 * reports went to the free page queue, which drops them.
 */
static void vb_del_vqs(struct vb_device *vb);

static int vb_init_vqs(struct vb_device *vb)
{
	struct virtqueue_info wanted[VB_VQ_MAX] = {}, info[VB_VQ_MAX];
	struct virtqueue *found[VB_VQ_MAX], *vqs[VB_VQ_MAX] = {};
	unsigned int i, n = 0;
	bool stats = virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_STATS_VQ);
	bool hint = virtio_has_feature(vb->vdev,
				       VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	bool reporting = virtio_has_feature(vb->vdev,
					    VIRTIO_BALLOON_F_REPORTING);
	int err;

	wanted[VB_VQ_INFLATE].name = "inflate";
	wanted[VB_VQ_INFLATE].callback = vb_balloon_ack;
	wanted[VB_VQ_DEFLATE].name = "deflate";
	wanted[VB_VQ_DEFLATE].callback = vb_balloon_ack;
	if (stats) {
		wanted[VB_VQ_STATS].name = "stats";
		wanted[VB_VQ_STATS].callback = vb_stats_request;
	}
	if (vb_hint_offered(vb->vdev)) {
		wanted[VB_VQ_FREE_PAGE].name = "free_page_vq";
		wanted[VB_VQ_FREE_PAGE].callback = hint ? vb_hint_vq_done : NULL;
	}
	if (reporting) {
		wanted[VB_VQ_REPORTING].name = "reporting_vq";
		wanted[VB_VQ_REPORTING].callback = vb_balloon_ack;
	}

	for (i = 0; i < VB_VQ_MAX; i++)
		if (wanted[i].name)
			info[n++] = wanted[i];
	err = virtio_find_vqs(vb->vdev, n, found, info, NULL);
	if (err)
		return err;
	for (i = 0, n = 0; i < VB_VQ_MAX; i++)
		if (wanted[i].name)
			vqs[i] = found[n++];

	vb->inflate_vq = vqs[VB_VQ_INFLATE];
	vb->deflate_vq = vqs[VB_VQ_DEFLATE];
	vb->stats_vq = stats ? vqs[VB_VQ_STATS] : NULL;
	vb->reporting_vq = reporting ? vqs[VB_VQ_REPORTING] : NULL;
	vb_hint_start(vb, hint ? vqs[VB_VQ_FREE_PAGE] : NULL);
	mutex_lock(&vb->balloon_lock);
	vb->broken = false;
	vb->vqs_ready = true;
	mutex_unlock(&vb->balloon_lock);

	if (vb->stats_vq) {
		/* The device returns this buffer when it wants figures. */
		err = vb_stats_queue(vb);
		if (err)
			goto err_del_vqs;
	}
	return 0;

err_del_vqs:
	vb_del_vqs(vb);
	return err;
}

/* From here on nothing is sent: compaction gives up on balloon pages. */
static void vb_close_queues(struct vb_device *vb)
{
	mutex_lock(&vb->balloon_lock);
	vb->vqs_ready = false;
	mutex_unlock(&vb->balloon_lock);
}

/* Forget the queues. */
static void vb_del_vqs(struct vb_device *vb)
{
	vb_close_queues(vb);
	vb->vdev->config->del_vqs(vb->vdev);
}

/*
 * Bring the device up: queues, poison value, DRIVER_OK, then the features
 * that may use the queues at any time (OOM notifier, page reporting), then
 * the work. Probe and restore.
 */
static int vb_up(struct vb_device *vb)
{
	int err;

	err = vb_init_vqs(vb);
	if (err)
		return err;
	vb_poison_init(vb);
	virtio_device_ready(vb->vdev);
	if (vb->stats_vq)
		virtqueue_kick(vb->stats_vq);

	err = vb_oom_init(vb);
	if (err)
		goto err_reset;
	err = vb_reporting_init(vb);
	if (err)
		goto err_oom_exit;

	vb_allow_work(&vb->work);
	vb_queue_work(&vb->work, &vb->resize_work, VB_WAKEUP_RESIZE);
	/*
	 * On restore, work was refused until now: the device may already have
	 * returned the statistics buffer, and only stats_work queues it again.
	 */
	if (vb->stats_vq)
		vb_queue_work(&vb->work, &vb->stats_work, VB_WAKEUP_STATS);
	/* A request may have come while the driver could not take it. */
	vb_hint_config_changed(vb);
	vb->up = true;
	return 0;

err_oom_exit:
	vb_oom_exit(vb);
err_reset:
	vb_close_queues(vb);
	virtio_reset_device(vb->vdev);
	vb_del_vqs(vb);
	return err;
}

/*
 * Take the device down in the reverse order of vb_up() and give every page
 * back to the guest. Pages the device did not acknowledge are released only
 * after the reset, when the device can no longer act on them. The queues
 * close before the reset: a message queued to a reset device would never be
 * acknowledged, and its sender would wait VB_ACK_TIMEOUT under balloon_lock.
 * Remove and freeze.
 */
static void vb_down(struct vb_device *vb)
{
	/* A restore that failed has taken the device down already. */
	if (!vb->up)
		return;
	vb->up = false;
	/* A report waiting on a device removed by surprise sees it broken. */
	wake_up_all(&vb->acked);
	vb_reporting_exit(vb);
	vb_oom_exit(vb);
	vb_stop_all_work(vb);
	vb_deflate_all(vb);
	vb_close_queues(vb);
	virtio_reset_device(vb->vdev);
	vb_release_unacked(vb);
	vb_hint_reset(vb);
	vb_del_vqs(vb);
}

static int vb_validate(struct virtio_device *vdev)
{
	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config space is not readable\n");
		return -EINVAL;
	}
	/*
	 * Page frame numbers are guest-physical addresses: never translate
	 * them through an IOMMU.
	 */
	__virtio_clear_bit(vdev, VIRTIO_F_ACCESS_PLATFORM);
	/*
	 * Page reporting runs with pages isolated and must not allocate:
	 * no indirect descriptors.
	 */
	__virtio_clear_bit(vdev, VIRTIO_RING_F_INDIRECT_DESC);
	vb_reporting_validate(vdev);
	/* Probe says why in the log; sysfs keeps saying it. */
	if (vb_hint_blocker(NULL))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	/* Bit 6 qualifies hinting: not without it. */
	if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		__virtio_clear_bit(vdev, VB_F_HINT_WAIT_ON_ACK);
	return 0;
}

static int vb_probe(struct virtio_device *vdev)
{
	struct vb_device *vb;
	int err;

	vb = kzalloc_obj(*vb, GFP_KERNEL);
	if (!vb)
		return -ENOMEM;

	vb->vdev = vdev;
	vdev->priv = vb;
	mutex_init(&vb->balloon_lock);
	init_waitqueue_head(&vb->acked);
	INIT_WORK(&vb->resize_work, vb_resize_work);
	INIT_WORK(&vb->stats_work, vb_stats_work);
	balloon_devinfo_init(&vb->pages);
	vb_compaction_init(vb);

	err = vb_work_init(&vb->work, &vdev->dev);
	if (err)
		goto err_free;

	err = vb_hint_init(vb);
	if (err)
		goto err_work_exit;

	device_set_wakeup_capable(&vdev->dev, true);
	err = vb_up(vb);
	if (err)
		goto err_hint_exit;

	dev_info(&vdev->dev, "virtio_balloon %s bound: stats %s, deflate-on-oom %s, free page reporting %s, page poison %s, free page hinting %s\n",
		 VB_DRIVER_VERSION, vb_onoff(vb->stats_vq),
		 vb_onoff(virtio_has_feature(vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM)),
		 vb_onoff(vb->reporting_on),
		 vb_onoff(virtio_has_feature(vdev, VIRTIO_BALLOON_F_PAGE_POISON)),
		 vb_onoff(vb_hint_on(vb)));
	return 0;

err_hint_exit:
	device_set_wakeup_capable(&vdev->dev, false);
	vb_hint_exit(vb);
err_work_exit:
	vb_work_exit(&vb->work);
err_free:
	kfree(vb);
	vdev->priv = NULL;
	return err;
}

static void vb_remove(struct virtio_device *vdev)
{
	struct vb_device *vb = vdev->priv;

	vb_down(vb);
	device_set_wakeup_capable(&vdev->dev, false);
	vb_hint_exit(vb);
	vb_work_exit(&vb->work);
	kfree(vb);
	vdev->priv = NULL;
}

#ifdef CONFIG_PM_SLEEP
/*
 * The balloon is emptied before the image is written and refilled after
 * restore: the host may have forgotten the pages it held by then.
 */
static int vb_freeze(struct virtio_device *vdev)
{
	struct vb_device *vb = vdev->priv;

	vb_down(vb);
	return 0;
}

static int vb_restore(struct virtio_device *vdev)
{
	return vb_up(vdev->priv);
}
#endif

static unsigned int vb_features[] = {
	VIRTIO_BALLOON_F_MUST_TELL_HOST,
	VIRTIO_BALLOON_F_STATS_VQ,
	VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
	VIRTIO_BALLOON_F_FREE_PAGE_HINT,
	VIRTIO_BALLOON_F_PAGE_POISON,
	VIRTIO_BALLOON_F_REPORTING,
	VB_F_HINT_WAIT_ON_ACK,
};

static const struct virtio_device_id vb_id_table[] = {
	{ VIRTIO_ID_BALLOON, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

/*
 * The driver core creates these before it announces the binding and removes
 * them before remove(): no reader of them outlives the device's data.
 */
static const struct attribute_group *vb_dev_groups[] = {
	&vb_hint_group,
	NULL,
};

static struct virtio_driver vb_driver = {
	.driver.dev_groups = vb_dev_groups,
	.feature_table = vb_features,
	.feature_table_size = ARRAY_SIZE(vb_features),
	.driver.name = KBUILD_MODNAME,
	.id_table = vb_id_table,
	.validate = vb_validate,
	.probe = vb_probe,
	.remove = vb_remove,
	.config_changed = vb_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze = vb_freeze,
	.restore = vb_restore,
#endif
};

static int __init vb_init(void)
{
	int err;

	err = vb_hint_walk_init();
	if (err)
		return err;
	err = register_virtio_driver(&vb_driver);
	if (err)
		goto err_walk_exit;
	return 0;

err_walk_exit:
	vb_hint_walk_exit();
	return err;
}

static void __exit vb_exit(void)
{
	unregister_virtio_driver(&vb_driver);
	vb_hint_walk_exit();
}

module_init(vb_init);
module_exit(vb_exit);
MODULE_DEVICE_TABLE(virtio, vb_id_table);
MODULE_DESCRIPTION("Virtio balloon driver with memory-neutral free page hinting");
MODULE_LICENSE("GPL");
MODULE_VERSION(VB_DRIVER_VERSION);
