// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: memory shared by nodes that are partitions of one host.
 *
 * QEMU's ivshmem-doorbell device (PCI 1af4:1110) gives every node of a
 * cluster booted with `cohort up --transport shm` the same region of host
 * memory (BAR 2) and a doorbell: writing "peer id << 16 | vector" to its
 * Doorbell register (BAR 0) raises MSI-X vector `vector` in the node whose
 * device has that peer id (its IVPosition register). The message
 * transport lays its rings out in the region (rust/proto's shm_ring) and
 * sleeps on the doorbell when they are empty.
 *
 * This file only finds the device, maps the region and forwards the
 * doorbell interrupt to the one client (the transport) attached. With
 * cohort.shm=0 (the default) at boot the device is left alone; set to 0
 * later (root, /sys/module/cohort/parameters/shm), the transport's next
 * attach fails and it speaks TCP only.
 *
 * The region stays mapped from probe on: the driver is built in and cannot
 * be unbound, so the transport may use it without a reference. Hot-unplug
 * of the device is not supported.
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <linux/cohort.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rcupdate.h>
#include <linux/string.h>
#include <linux/time64.h>

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "cohort."

static bool shm;
module_param(shm, bool, 0644);
MODULE_PARM_DESC(shm, "Let the transport use an ivshmem-doorbell device's shared memory (default 0; the device is bound only if set at boot)");
static unsigned int shm_poll_us;
module_param(shm_poll_us, uint, 0644);
MODULE_PARM_DESC(shm_poll_us, "How long a receiver polls its ring after its last bytes before sleeping on the doorbell, in us (default 0: never; at most 10000)");

/**
 * cohort_shm_poll_ns - how long a receiver polls after its last bytes
 *
 * cohort.shm_poll_us when called, in ns, at most 10 ms. Polling saves the
 * doorbell and the wake-up when the next bytes come within it, at the
 * cost of a CPU while it lasts: worth it when each node has CPUs of its
 * own, harmful when the host runs more vCPUs than it has cores.
 */
u64 cohort_shm_poll_ns(void)
{
	return (u64)min(READ_ONCE(shm_poll_us), 10000U) * NSEC_PER_USEC;
}
EXPORT_SYMBOL_GPL(cohort_shm_poll_ns);

/* ivshmem registers (BAR 0). */
#define IVSHMEM_IV_POSITION	0x08
#define IVSHMEM_DOORBELL	0x0c

/**
 * struct cohort_ivshmem - the device, once probed
 * @regs: its registers (BAR 0)
 * @mem: its region (BAR 2), mapped write-back
 * @size: bytes of @mem
 * @position: its peer id
 * @irq: the doorbell's interrupt (MSI-X vector 0)
 */
struct cohort_ivshmem {
	void __iomem *regs;
	void *mem;
	size_t size;
	u16 position;
	int irq;
};

/* Set once by the probe of the first device, with release; never cleared. */
static struct cohort_ivshmem *ivshmem;
/* The attached client; readers under RCU (the interrupt handler). */
static struct cohort_shm_client __rcu *shm_client;
/* Serialises attach and detach. */
static DEFINE_MUTEX(client_lock);

static irqreturn_t cohort_ivshmem_irq(int irq, void *data)
{
	struct cohort_shm_client *client;

	rcu_read_lock();
	client = rcu_dereference(shm_client);
	if (client)
		client->doorbell(client->data);
	rcu_read_unlock();
	return IRQ_HANDLED;
}

static int cohort_ivshmem_probe(struct pci_dev *pdev,
				const struct pci_device_id *id)
{
	struct cohort_ivshmem *dev;
	resource_size_t start, len;
	int err;

	if (!shm)
		return -ENODEV;
	/* Pairs with the release below: a device seen is fully set up. */
	if (smp_load_acquire(&ivshmem)) {
		dev_warn(&pdev->dev, "a second ivshmem device: only the first is used\n");
		return -EBUSY;
	}
	err = pci_enable_device(pdev);
	if (err)
		return err;
	err = pci_request_regions(pdev, "cohort-ivshmem");
	if (err)
		goto disable;
	start = pci_resource_start(pdev, 2);
	len = pci_resource_len(pdev, 2);
	err = -ENODEV;
	if (!start || !len || !pci_resource_len(pdev, 0)) {
		dev_err(&pdev->dev, "no shared memory (BAR 2) or registers (BAR 0)\n");
		goto release;
	}
	err = -ENOMEM;
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		goto release;
	dev->regs = pci_iomap(pdev, 0, 0);
	if (!dev->regs)
		goto free;
	dev->mem = memremap(start, len, MEMREMAP_WB);
	if (!dev->mem)
		goto unmap_regs;
	dev->size = len;
	pci_set_master(pdev);
	err = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (err < 0) {
		dev_err(&pdev->dev, "no MSI-X vector (error %d): boot the device with vectors=1\n",
			err);
		goto unmap_mem;
	}
	dev->irq = pci_irq_vector(pdev, 0);
	err = request_irq(dev->irq, cohort_ivshmem_irq, 0, "cohort-ivshmem", dev);
	if (err)
		goto free_vectors;
	dev->position = readl(dev->regs + IVSHMEM_IV_POSITION);
	pci_set_drvdata(pdev, dev);
	/* Publishes every field of @dev to the accessors' acquire. */
	smp_store_release(&ivshmem, dev);
	dev_info(&pdev->dev, "%llu KiB of shared memory, peer id %u\n",
		 (unsigned long long)len >> 10, dev->position);
	return 0;

free_vectors:
	pci_free_irq_vectors(pdev);
unmap_mem:
	memunmap(dev->mem);
unmap_regs:
	pci_iounmap(pdev, dev->regs);
free:
	kfree(dev);
release:
	pci_release_regions(pdev);
disable:
	pci_disable_device(pdev);
	return err;
}

static const struct pci_device_id cohort_ivshmem_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },
	{ }
};

static struct pci_driver cohort_ivshmem_driver = {
	.name = "cohort-ivshmem",
	.id_table = cohort_ivshmem_ids,
	.probe = cohort_ivshmem_probe,
	.driver = {
		/* The region must outlive every user: no unbinding. */
		.suppress_bind_attrs = true,
	},
};
builtin_pci_driver(cohort_ivshmem_driver);

/**
 * cohort_shm_attach - become the one user of the shared memory
 * @client: whose doorbell() is called (in interrupt context) when a peer
 *	rings this node; it must stay valid until cohort_shm_detach()
 * @info: filled with the region's size and this node's peer id
 *
 * Return: 0; -EPERM with cohort.shm=0 now; -ENODEV without the device;
 * -EBUSY when another client is attached.
 */
int cohort_shm_attach(struct cohort_shm_client *client,
		      struct cohort_shm_info *info)
{
	/* Pairs with the probe's release: the fields read below are set. */
	struct cohort_ivshmem *dev = smp_load_acquire(&ivshmem);
	int err = 0;

	if (!READ_ONCE(shm))
		return -EPERM;
	if (!dev)
		return -ENODEV;
	mutex_lock(&client_lock);
	if (rcu_access_pointer(shm_client)) {
		err = -EBUSY;
	} else {
		info->size = dev->size;
		info->position = dev->position;
		rcu_assign_pointer(shm_client, client);
	}
	mutex_unlock(&client_lock);
	return err;
}
EXPORT_SYMBOL_GPL(cohort_shm_attach);

/**
 * cohort_shm_detach - stop being the user of the shared memory
 * @client: as attached
 *
 * Waits until no interrupt handler runs @client's doorbell().
 */
void cohort_shm_detach(struct cohort_shm_client *client)
{
	mutex_lock(&client_lock);
	if (rcu_access_pointer(shm_client) == client)
		RCU_INIT_POINTER(shm_client, NULL);
	mutex_unlock(&client_lock);
	synchronize_rcu();
}
EXPORT_SYMBOL_GPL(cohort_shm_detach);

/* The device, for the accessors below: attached clients only. */
static struct cohort_ivshmem *shm_dev(void)
{
	/* Pairs with the probe's release. */
	return smp_load_acquire(&ivshmem);
}

/* Whether [@off, @off + @len) lies in the region. */
static bool shm_range(struct cohort_ivshmem *dev, size_t off, size_t len)
{
	return dev && off <= dev->size && len <= dev->size - off;
}

/**
 * cohort_shm_ring - ring a doorbell
 * @value: peer id << 16 | vector
 */
void cohort_shm_ring(u32 value)
{
	struct cohort_ivshmem *dev = shm_dev();

	if (dev)
		writel(value, dev->regs + IVSHMEM_DOORBELL);
}
EXPORT_SYMBOL_GPL(cohort_shm_ring);

/**
 * cohort_shm_load_acquire - load the 64-bit word at @off of the region
 * @off: byte offset, a multiple of 8
 *
 * Return: the word (smp_load_acquire), or 0 for an offset outside it.
 */
u64 cohort_shm_load_acquire(size_t off)
{
	struct cohort_ivshmem *dev = shm_dev();

	if (!shm_range(dev, off, sizeof(u64)) || off % sizeof(u64))
		return 0;
	/* The ring protocol's acquire: see rust/proto/src/shm_ring.rs. */
	return smp_load_acquire((u64 *)(dev->mem + off));
}
EXPORT_SYMBOL_GPL(cohort_shm_load_acquire);

/**
 * cohort_shm_store_release - store @val at @off of the region
 * @off: byte offset, a multiple of 8; outside the region nothing is done
 * @val: the word (smp_store_release)
 */
void cohort_shm_store_release(size_t off, u64 val)
{
	struct cohort_ivshmem *dev = shm_dev();

	if (!shm_range(dev, off, sizeof(u64)) || off % sizeof(u64))
		return;
	/* The ring protocol's release: see rust/proto/src/shm_ring.rs. */
	smp_store_release((u64 *)(dev->mem + off), val);
}
EXPORT_SYMBOL_GPL(cohort_shm_store_release);

/**
 * cohort_shm_read - copy @len bytes at @off of the region to @buf
 * @off: byte offset; outside the region @buf is zeroed
 * @buf: destination
 * @len: bytes
 */
void cohort_shm_read(size_t off, void *buf, size_t len)
{
	struct cohort_ivshmem *dev = shm_dev();

	if (!shm_range(dev, off, len)) {
		memset(buf, 0, len);
		return;
	}
	memcpy(buf, dev->mem + off, len);
}
EXPORT_SYMBOL_GPL(cohort_shm_read);

/**
 * cohort_shm_write - copy @len bytes from @buf to @off of the region
 * @off: byte offset; outside the region nothing is done
 * @buf: source
 * @len: bytes
 */
void cohort_shm_write(size_t off, const void *buf, size_t len)
{
	struct cohort_ivshmem *dev = shm_dev();

	if (shm_range(dev, off, len))
		memcpy(dev->mem + off, buf, len);
}
EXPORT_SYMBOL_GPL(cohort_shm_write);

/**
 * cohort_shm_fence - a full memory barrier (smp_mb)
 */
void cohort_shm_fence(void)
{
	/* Orders a store before a later load (the wake-up protocol's fence). */
	smp_mb();
}
EXPORT_SYMBOL_GPL(cohort_shm_fence);
