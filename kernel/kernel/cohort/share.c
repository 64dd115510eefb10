// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the memory linker's helpers for shared memory. An anonymous
 * shared region (mmap(MAP_SHARED | MAP_ANONYMOUS), a shmem file named
 * "dev/zero") that a migrated process maps, and a SysV segment whose key
 * is known cluster-wide, are one container each (Gobelins; Containers
 * report, section 4): on each node, the container's local store is the
 * region's or the segment's shmem file, and the node's copy of page @index
 * is the file's page @index. Every fault on the region asks the
 * page layer for a copy first; the page layer then installs the page with
 * cohort_share_fault_install(), which maps it read-only unless the node has
 * the only, writable, copy.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/shmem_fs.h>
#include <linux/string.h>

#include "internal.h"

/* The name shmem gives the file of an anonymous shared region. */
static const char cohort_shared_anon_name[] = "dev/zero";

/**
 * cohort_file_is_shared_anon - whether a file is an anonymous shared region
 * @file: the file
 *
 * The file of a MAP_SHARED | MAP_ANONYMOUS region (shmem_zero_setup()) and
 * the files cohort_share_new() makes are internal shmem files named
 * "dev/zero"; no other file has that name (a file name has no '/').
 *
 * Return: true for such a file.
 */
bool cohort_file_is_shared_anon(struct file *file)
{
	return file && shmem_file(file) &&
	       !strcmp(file->f_path.dentry->d_name.name,
		       cohort_shared_anon_name);
}
EXPORT_SYMBOL_GPL(cohort_file_is_shared_anon);

/* Whether @file is (or is attached to) a SysV segment in shmem. */
static bool cohort_file_is_sysv(struct file *file)
{
	const char *name;

	if (!file || !shmem_file(file))
		return false;
	/* newseg() names it "SYSV" and the key in 8 hex digits. */
	name = file->f_path.dentry->d_name.name;
	return !strncmp(name, "SYSV", 4) && strlen(name) == 12;
}

/**
 * cohort_file_is_linkable - whether a file's pages may be a container's
 * @file: the file
 *
 * Return: true for an anonymous shared region and for the shmem file of a
 * SysV segment (or the file of an attachment of one).
 */
bool cohort_file_is_linkable(struct file *file)
{
	return cohort_file_is_shared_anon(file) || cohort_file_is_sysv(file);
}
EXPORT_SYMBOL_GPL(cohort_file_is_linkable);

/**
 * cohort_vma_shared_file - the file of a shared mapping a container may back
 * @vma: the mapping, locked by the caller
 *
 * Return: @vma's file (no reference taken: it lives as long as @vma) when
 * @vma maps, with MAP_SHARED, an anonymous shared region or a SysV segment
 * (shmat()), else NULL.
 */
struct file *cohort_vma_shared_file(struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED) ||
	    !cohort_file_is_linkable(vma->vm_file))
		return NULL;
	return vma->vm_file;
}
EXPORT_SYMBOL_GPL(cohort_vma_shared_file);

/**
 * cohort_vma_pgoff - the file page an address of a mapping maps
 * @vma: the mapping, locked by the caller
 * @address: an address in @vma
 *
 * Return: the page index in @vma's file.
 */
u64 cohort_vma_pgoff(struct vm_area_struct *vma, unsigned long address)
{
	return linear_page_index(vma, address);
}
EXPORT_SYMBOL_GPL(cohort_vma_pgoff);

/**
 * cohort_file_key - an identifier of the object behind a file
 * @file: the file
 *
 * Return: the address of @file's inode, the same for every file open on
 * it, while a reference on one is held.
 */
unsigned long cohort_file_key(struct file *file)
{
	return (unsigned long)file_inode(file);
}
EXPORT_SYMBOL_GPL(cohort_file_key);

/**
 * cohort_file_unused - whether only the caller holds a file
 * @file: the file, on which the caller holds one reference
 *
 * Every mapping of a file holds a reference on it: a shared region no
 * mapping of this node maps any more has the caller's reference only.
 *
 * Return: true when the caller's reference is the only one.
 */
bool cohort_file_unused(struct file *file)
{
	return file_count(file) == 1;
}
EXPORT_SYMBOL_GPL(cohort_file_unused);

/**
 * cohort_share_new - a new anonymous shared region
 * @size: its size in bytes
 * @vm_flags: VM_NORESERVE when the region was made so
 *
 * Return: the region's file (a reference to drop with fput()), or an
 * ERR_PTR.
 */
struct file *cohort_share_new(u64 size, unsigned long vm_flags)
{
	if (!size || size > MAX_LFS_FILESIZE)
		return ERR_PTR(-EINVAL);
	return shmem_kernel_file_setup(cohort_shared_anon_name, size,
				       vm_flags & VM_NORESERVE);
}
EXPORT_SYMBOL_GPL(cohort_share_new);

/* Unmaps page @index of @file from every address space of this node. */
static void cohort_share_unmap(struct file *file, u64 index, u64 nr)
{
	unmap_mapping_range(file->f_mapping, (loff_t)index << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 0);
}

/**
 * cohort_share_zap - unmap a page of a shared region from every mapping
 * @file: the region's file
 * @index: the page
 *
 * The page stays in the file; the next access to it faults again (and asks
 * the page layer). So a copy this node keeps read-only after handing out
 * another is write-protected.
 */
void cohort_share_zap(struct file *file, u64 index)
{
	cohort_share_unmap(file, index, 1);
}
EXPORT_SYMBOL_GPL(cohort_share_zap);

/**
 * cohort_share_read - read a page of a shared region
 * @file: the region's file
 * @index: the page
 * @buf: a page-sized buffer
 *
 * The page is unmapped from every mapping first, so that no write lands
 * after the read. A page never written reads as zeros; one swapped out is
 * read in.
 *
 * Return: 0, -EINVAL for a page past the end of the file, or -ENOMEM.
 */
int cohort_share_read(struct file *file, u64 index, void *buf)
{
	struct folio *folio = NULL;
	void *src;
	int ret;

	cohort_share_unmap(file, index, 1);
	ret = shmem_get_folio(file_inode(file), index, 0, &folio, SGP_READ);
	if (ret)
		return ret;
	if (!folio) {
		memset(buf, 0, PAGE_SIZE);
		return 0;
	}
	src = kmap_local_page(folio_file_page(folio, index));
	memcpy(buf, src, PAGE_SIZE);
	kunmap_local(src);
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_share_read);

/**
 * cohort_share_write - store a page that came from another node
 * @file: the region's file
 * @index: the page
 * @data: its contents, a whole page
 *
 * Any mapping of the page is dropped first; the next access maps the new
 * contents. The page is dirty: reclaim swaps it out rather than dropping
 * it.
 *
 * Return: 0, -EINVAL for a page past the end of the file, -ENOSPC or
 * -ENOMEM.
 */
int cohort_share_write(struct file *file, u64 index, const void *data)
{
	struct folio *folio = NULL;
	void *dst;
	int ret;

	cohort_share_unmap(file, index, 1);
	ret = shmem_get_folio(file_inode(file), index, 0, &folio, SGP_CACHE);
	if (ret)
		return ret;
	dst = kmap_local_page(folio_file_page(folio, index));
	memcpy(dst, data, PAGE_SIZE);
	kunmap_local(dst);
	flush_dcache_folio(folio);
	folio_mark_dirty(folio);
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_share_write);

/**
 * cohort_share_drop - drop pages of a shared region
 * @file: the region's file
 * @first: the first page
 * @end: one past the last (clamped to the file's size)
 *
 * The pages are unmapped and removed from the file (and from swap): the
 * next access reads zeros, once the page layer allows it.
 */
void cohort_share_drop(struct file *file, u64 first, u64 end)
{
	struct inode *inode = file_inode(file);
	u64 size = DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE);

	end = min(end, size);
	if (first >= end)
		return;
	cohort_share_unmap(file, first, end - first);
	shmem_truncate_range(inode, (loff_t)first << PAGE_SHIFT,
			     ((loff_t)end << PAGE_SHIFT) - 1);
}
EXPORT_SYMBOL_GPL(cohort_share_drop);

/**
 * cohort_share_fault_install - map the page of a shared region a fault needs
 * @vma: the faulting mapping (cohort_vma_shared_file() is its file), locked
 * @address: the faulting address
 * @flags: the fault's FAULT_FLAG_* flags
 * @write: map it writable (this node has the only copy); else read-only
 * @epoch: the page layer's epoch, or NULL
 * @seen: the epoch at which the page layer allowed the access
 *
 * The page is taken from the file (made, as zeros, when the file has none:
 * this node owns a page nobody wrote) and locked; the epoch is checked
 * under the page table lock, so a copy the page layer dropped or
 * write-protected since @seen is not mapped (a drop waits for the page
 * lock, and unmaps what is mapped).
 *
 * Return: 0 (mapped, or mapped meanwhile), VM_FAULT_NOPAGE when the epoch
 * moved (ask the page layer again), VM_FAULT_OOM or VM_FAULT_SIGBUS.
 */
vm_fault_t cohort_share_fault_install(struct vm_area_struct *vma,
				      unsigned long address, unsigned int flags,
				      bool write, const u64 *epoch, u64 seen)
{
	struct vm_fault vmf = {
		.vma = vma,
		.address = address & PAGE_MASK,
		.real_address = address,
		.flags = flags,
		.pgoff = linear_page_index(vma, address),
	};
	struct mm_struct *mm = vma->vm_mm;
	struct folio *folio = NULL;
	struct page *page;
	vm_fault_t ret = 0;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	pte_t entry;
	int err;

	if (!cohort_vma_shared_file(vma))
		return VM_FAULT_SIGBUS;
	pgd = pgd_offset(mm, vmf.address);
	p4d = p4d_alloc(mm, pgd, vmf.address);
	if (!p4d)
		return VM_FAULT_OOM;
	pud = pud_alloc(mm, p4d, vmf.address);
	if (!pud)
		return VM_FAULT_OOM;
	vmf.pmd = pmd_alloc(mm, pud, vmf.address);
	if (!vmf.pmd)
		return VM_FAULT_OOM;
	if (pte_alloc(mm, vmf.pmd))
		return VM_FAULT_OOM;

	err = shmem_get_folio(file_inode(vma->vm_file), vmf.pgoff, 0, &folio,
			      SGP_CACHE);
	if (err)
		return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	page = folio_file_page(folio, vmf.pgoff);

	vmf.pte = pte_offset_map_lock(mm, vmf.pmd, vmf.address, &vmf.ptl);
	if (!vmf.pte) {
		ret = VM_FAULT_NOPAGE;
		goto out;
	}
	if (epoch && READ_ONCE(*epoch) != seen) {
		ret = VM_FAULT_NOPAGE;
		goto unlock;
	}
	if (!pte_none(ptep_get(vmf.pte))) {
		/* Mapped meanwhile: keep what is there. */
		update_mmu_tlb(vma, vmf.address, vmf.pte);
		goto unlock;
	}
	entry = pte_sw_mkyoung(mk_pte(page, vma->vm_page_prot));
	if (write)
		entry = maybe_mkwrite(pte_mkdirty(entry), vma);
	else
		entry = pte_wrprotect(entry);
	folio_get(folio);
	add_mm_counter(mm, mm_counter_file(folio), 1);
	folio_add_file_rmap_pte(folio, page, vma);
	set_pte_at(mm, vmf.address, vmf.pte, entry);
	update_mmu_cache_range(&vmf, vma, vmf.address, vmf.pte, 1);
	if (write)
		folio_mark_dirty(folio);
unlock:
	pte_unmap_unlock(vmf.pte, vmf.ptl);
out:
	folio_unlock(folio);
	folio_put(folio);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_share_fault_install);

/**
 * cohort_share_link - link an anonymous shared region to a container
 * @file: the region's file (a reference held by the caller)
 * @container: the container's cluster-wide id, or 0 for a new container
 *	homed at this node (the page layer chooses its id)
 *
 * From then on every fault on a mapping of the region on this node gets its
 * page from the container. Linking a linked region again returns its
 * container. May sleep: a node that is not the container's home asks the
 * home first.
 *
 * Return: the container's id (positive), -ENOPROTOOPT when no page layer is
 * loaded, or the page layer's errno.
 */
int cohort_share_link(struct file *file, u32 container)
{
	const struct cohort_fault_ops *ops;
	int idx, ret = -ENOPROTOOPT;

	if (!cohort_file_is_linkable(file))
		return -EINVAL;
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->share_link)
		ret = ops->share_link(file, container);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_share_link);

/**
 * cohort_share_file - the region linked to a container on this node
 * @container: the container's cluster-wide id
 *
 * Return: the region's file, with a reference to drop with fput(), or NULL
 * when no region here is linked to @container (or no page layer is
 * loaded).
 */
struct file *cohort_share_file(u32 container)
{
	const struct cohort_fault_ops *ops;
	struct file *file = NULL;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->share_file)
		file = ops->share_file(container);
	srcu_read_unlock(&cohort_srcu, idx);
	return file;
}
EXPORT_SYMBOL_GPL(cohort_share_file);

/**
 * cohort_current_egids - current's effective ids, as a SysV segment takes them
 * @uid: set to the effective uid, in the initial user namespace
 * @gid: set to the effective gid, in the initial user namespace
 */
void cohort_current_egids(u32 *uid, u32 *gid)
{
	*uid = from_kuid_munged(&init_user_ns, current_euid());
	*gid = from_kgid_munged(&init_user_ns, current_egid());
}
EXPORT_SYMBOL_GPL(cohort_current_egids);

/**
 * cohort_ipc_may - whether current may access a SysV object so owned
 * @uid: the object's owner, in the initial user namespace
 * @gid: its group, in the initial user namespace
 * @mode: its permission bits
 * @flag: the access asked for (S_IRUGO, S_IWUGO, or shmget()'s low bits)
 *
 * The rule of ipcperms() (ipc/util.c) for an object of another node,
 * whose owner and creator are @uid and @gid; CAP_IPC_OWNER in the initial
 * user namespace overrides it. The LSM hooks run on this node's object.
 *
 * Return: true when the access is allowed.
 */
bool cohort_ipc_may(u32 uid, u32 gid, u16 mode, int flag)
{
	kuid_t owner = make_kuid(&init_user_ns, uid);
	kgid_t group = make_kgid(&init_user_ns, gid);
	int requested = (flag >> 6) | (flag >> 3) | flag;
	int granted = mode;

	if (uid_eq(current_euid(), owner))
		granted >>= 6;
	else if (in_group_p(group))
		granted >>= 3;
	/* Is there some bit set in requested_mode but not in granted_mode? */
	return !((requested & ~granted & 0007) && !capable(CAP_IPC_OWNER));
}
EXPORT_SYMBOL_GPL(cohort_ipc_may);
