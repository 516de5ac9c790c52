// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_balloon: the driver's workqueue and the device's wakeup source.
 *
 * The bottom layer: device callbacks (interrupt context) queue the work of
 * every feature through vb_queue_work(), and remove and freeze stop it here.
 * It calls nothing else of the driver.
 */

#include <linux/device.h>
#include <linux/pm_wakeup.h>
#include <linux/workqueue.h>

#include "virtio_balloon_internal.h"

int vb_work_init(struct vb_work *w, struct device *dev)
{
	spin_lock_init(&w->lock);
	w->dev = dev;
	/*
	 * No work until the device is up (vb_allow_work()): a callback of a
	 * device that is ready may fire before probe has finished, and if
	 * probe then fails, work queued for it would run on deleted queues.
	 */
	w->stopping = true;
	/*
	 * High priority: a hint request is worth most in its first moments.
	 * Per-CPU, not unbound: the resize work waits for the device's
	 * interrupt on every message, and hopping CPUs made inflation twice
	 * as slow as the in-tree driver's under TCG.
	 */
	w->wq = alloc_workqueue("virtio_balloon/%s",
				WQ_FREEZABLE | WQ_HIGHPRI | VB_WQ_PERCPU, 0,
				dev_name(dev));
	return w->wq ? 0 : -ENOMEM;
}

void vb_work_exit(struct vb_work *w)
{
	destroy_workqueue(w->wq);
}

/* Let the system suspend again: no request waits for its work. */
static void vb_wakeup_release(struct vb_work *w)
{
	lockdep_assert_held(&w->lock);
	if (!w->wakeup_pending && w->wakeup_active) {
		w->wakeup_active = false;
		pm_relax(w->dev);
	}
}

/*
 * Queue @work unless the device is being removed or frozen, and keep the
 * device's wakeup source active until the work has run: the transport may
 * have woken the system to deliver this request, and suspending before the
 * work ran would leave the request unanswered.
 */
bool vb_queue_work(struct vb_work *w, struct work_struct *work, u32 reason)
{
	unsigned long flags;
	bool queued = false;

	spin_lock_irqsave(&w->lock, flags);
	if (!w->stopping) {
		w->wakeup_pending |= reason;
		if (!w->wakeup_active) {
			w->wakeup_active = true;
			pm_stay_awake(w->dev);
		}
		queued = queue_work(w->wq, work);
	}
	spin_unlock_irqrestore(&w->lock, flags);
	return queued;
}

/*
 * Called by a work item before it reads the device: a request that arrives
 * from now on sets @reason again and keeps the system awake for the next run.
 */
void vb_work_begin(struct vb_work *w, u32 reason)
{
	spin_lock_irq(&w->lock);
	w->wakeup_pending &= ~reason;
	spin_unlock_irq(&w->lock);
}

void vb_work_end(struct vb_work *w)
{
	spin_lock_irq(&w->lock);
	vb_wakeup_release(w);
	spin_unlock_irq(&w->lock);
}

/*
 * Queue no more work. The caller then cancels each work item and calls
 * vb_work_stopped().
 */
void vb_stop_work(struct vb_work *w)
{
	spin_lock_irq(&w->lock);
	w->stopping = true;
	spin_unlock_irq(&w->lock);
}

/* Every work item is cancelled: the requests they had are void. */
void vb_work_stopped(struct vb_work *w)
{
	spin_lock_irq(&w->lock);
	w->wakeup_pending = 0;
	vb_wakeup_release(w);
	spin_unlock_irq(&w->lock);
}

void vb_allow_work(struct vb_work *w)
{
	spin_lock_irq(&w->lock);
	w->stopping = false;
	spin_unlock_irq(&w->lock);
}

/*
 * Whether remove or freeze has begun. Unlocked, for loops that should end
 * early: a late answer only delays them, as the caller cancels the work.
 */
bool vb_work_stopping(struct vb_work *w)
{
	/* Racy by design: vb_stop_work()'s caller then cancels the work. */
	return data_race(w->stopping);
}
