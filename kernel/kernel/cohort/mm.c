// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: helpers for the address space of a migrated task. A task
 * leaves with the description of its mappings (cohort_mm_describe()); where
 * it arrives they are replayed (cohort_mm_install()), empty: its pages come
 * on demand from the page layer's container, which reads, installs and
 * write-protects them with the memory linker's helpers below and
 * cohort_fault_install_page() (in mm/memory.c).
 */
#include <linux/dcache.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/pagemap.h>
#include <linux/pagewalk.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>

#include "internal.h"

static int cohort_vma_describe(struct vm_area_struct *vma,
			       struct cohort_vma *out)
{
	char *path;
	int kind, ret;

	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->flags = vma->vm_flags;
	out->pgoff = 0;
	out->container = 0;
	out->size = 0;
	out->path[0] = '\0';

	kind = cohort_arch_vma_kind(vma);
	if (kind >= 0) {
		out->kind = kind;
		return 0;
	}
	if (is_vm_hugetlb_page(vma) ||
	    (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)))
		return -EOPNOTSUPP;
	if (vma_is_anonymous(vma)) {
		out->kind = COHORT_VMA_ANON;
		return 0;
	}
	if (!vma->vm_file)
		return -EOPNOTSUPP;
	if ((vma->vm_flags & VM_SHARED) &&
	    cohort_file_is_shared_anon(vma->vm_file)) {
		/* Its pages are a container's, wherever it is mapped. */
		ret = cohort_share_link(vma->vm_file, 0);
		if (ret < 0)
			return ret;
		out->kind = COHORT_VMA_SHARED;
		out->container = ret;
		out->pgoff = vma->vm_pgoff;
		out->size = i_size_read(file_inode(vma->vm_file));
		return 0;
	}
	/* Any other shared writable mapping would need its pages coherent. */
	if ((vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_MAYWRITE))
		return -EOPNOTSUPP;
	out->pgoff = vma->vm_pgoff;
	path = d_path(&vma->vm_file->f_path, out->path, sizeof(out->path));
	if (IS_ERR(path) || d_unlinked(vma->vm_file->f_path.dentry)) {
		/*
		 * A deleted file, or a path too long to carry: no node can
		 * open it by name, but its pages come from here anyway.
		 */
		out->path[0] = '\0';
		out->kind = COHORT_VMA_FILE_ANON;
		return 0;
	}
	memmove(out->path, path, strlen(path) + 1);
	out->kind = COHORT_VMA_FILE;
	return 0;
}

/**
 * cohort_mm_describe - describe current's address space
 * @layout: where to store the mm's fields
 * @vmas: where to store the mappings, in address order
 * @max: room at @vmas
 *
 * Anonymous shared regions mapped with MAP_SHARED are linked to containers
 * on the way (cohort_share_link()), so that the task finds the same region
 * wherever it goes.
 *
 * Return: the number of mappings (more than @max: call again with room for
 * them), -EOPNOTSUPP for a mapping migration cannot carry (shared writable
 * other than an anonymous shared region, device, huge pages), the page
 * layer's errno for a region it cannot link, or -EINTR.
 */
int cohort_mm_describe(struct cohort_mm_layout *layout,
		       struct cohort_vma *vmas, unsigned int max)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	struct cohort_vma scratch;
	struct vma_iterator vmi;
	unsigned int nr = 0;
	int ret = 0;

	if (!mm)
		return -EOPNOTSUPP;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma_iter_init(&vmi, mm, 0);
	layout->start_code = mm->start_code;
	layout->end_code = mm->end_code;
	layout->start_data = mm->start_data;
	layout->end_data = mm->end_data;
	layout->start_brk = mm->start_brk;
	layout->brk = mm->brk;
	layout->start_stack = mm->start_stack;
	layout->arg_start = mm->arg_start;
	layout->arg_end = mm->arg_end;
	layout->env_start = mm->env_start;
	layout->env_end = mm->env_end;
	for_each_vma(vmi, vma) {
		ret = cohort_vma_describe(vma, nr < max ? &vmas[nr] : &scratch);
		if (ret)
			break;
		nr++;
		/* Up to vm.max_map_count of them: let the heartbeats run. */
		cond_resched();
	}
	mmap_read_unlock(mm);
	return ret ?: nr;
}
EXPORT_SYMBOL_GPL(cohort_mm_describe);

static unsigned long cohort_vma_prot(u64 flags)
{
	return (flags & VM_READ ? PROT_READ : 0) |
	       (flags & VM_WRITE ? PROT_WRITE : 0) |
	       (flags & VM_EXEC ? PROT_EXEC : 0);
}

/*
 * Whether [start, end) is mapped by current with the backing @v asks for
 * (anonymous memory, or @file at the right offset, or for a file that has
 * no name any file at the right offset), so its pages stay.
 */
static bool cohort_range_matches(const struct cohort_vma *v, struct file *file)
{
	bool any_file = v->kind == COHORT_VMA_FILE_ANON;
	struct mm_struct *mm = current->mm;
	unsigned long addr = v->start;
	struct vm_area_struct *vma;
	bool match = true;

	mmap_read_lock(mm);
	while (addr < v->end) {
		vma = vma_lookup(mm, addr);
		if (!vma || cohort_arch_vma_kind(vma) >= 0) {
			match = false;
			break;
		}
		if (file || any_file) {
			if (!vma->vm_file ||
			    (file && file_inode(vma->vm_file) != file_inode(file)) ||
			    vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT) !=
			    v->pgoff + ((addr - v->start) >> PAGE_SHIFT)) {
				match = false;
				break;
			}
		} else if (!vma_is_anonymous(vma)) {
			match = false;
			break;
		}
		if ((vma->vm_flags ^ v->flags) & VM_GROWSDOWN) {
			match = false;
			break;
		}
		addr = vma->vm_end;
	}
	mmap_read_unlock(mm);
	return match;
}

/* A page of a range mapped afresh, kept to be put back afterwards. */
struct cohort_kept_page {
	struct list_head node;
	unsigned long addr;
	u8 data[PAGE_SIZE];
};

static void cohort_kept_free(struct list_head *kept)
{
	struct cohort_kept_page *k, *tmp;

	list_for_each_entry_safe(k, tmp, kept, node) {
		list_del(&k->node);
		kfree(k);
	}
}

/*
 * Copies the pages current maps in [start, end) to @kept (those swapped
 * out are read in first). Return: 0, -ENOMEM or -EINTR.
 */
static int cohort_range_keep(unsigned long start, unsigned long end,
			     struct list_head *kept)
{
	struct mm_struct *mm = current->mm;
	struct cohort_kept_page *k = NULL;
	struct vm_area_struct *vma;
	struct folio_walk fw;
	unsigned long addr;
	struct page *page;
	int ret = 0;
	void *src;

	for (addr = start; addr < end; addr += PAGE_SIZE) {
		if (!k) {
			k = kmalloc(sizeof(*k), GFP_KERNEL);
			if (!k)
				return -ENOMEM;
		}
		if (mmap_read_lock_killable(mm)) {
			ret = -EINTR;
			break;
		}
		vma = find_vma(mm, addr);
		if (!vma || vma->vm_start >= end) {
			mmap_read_unlock(mm);
			break;
		}
		if (addr < vma->vm_start)
			addr = vma->vm_start;
		if (cohort_arch_vma_kind(vma) >= 0 ||
		    cohort_vma_pte_state(vma, addr) == COHORT_PTE_NONE) {
			mmap_read_unlock(mm);
			cond_resched();
			continue;
		}
		if (cohort_vma_pte_state(vma, addr) == COHORT_PTE_OTHER &&
		    get_user_pages_remote(mm, addr, 1, FOLL_FORCE, &page,
					  NULL) == 1)
			put_page(page);
		if (folio_walk_start(&fw, vma, addr, 0)) {
			src = kmap_local_page(fw.page);
			memcpy(k->data, src, PAGE_SIZE);
			kunmap_local(src);
			folio_walk_end(&fw, vma);
			k->addr = addr;
			list_add_tail(&k->node, kept);
			k = NULL;
		}
		mmap_read_unlock(mm);
		cond_resched();
	}
	kfree(k);
	return ret;
}

static int cohort_vma_install(const struct cohort_vma *v, bool keep)
{
	LIST_HEAD(kept);
	struct cohort_kept_page *k;
	unsigned long prot = cohort_vma_prot(v->flags);
	unsigned long flags = MAP_PRIVATE | MAP_FIXED;
	unsigned long len = v->end - v->start;
	struct file *file = NULL;
	unsigned long addr;
	int ret = 0;

	if (v->kind == COHORT_VMA_FILE) {
		if (strnlen(v->path, sizeof(v->path)) == sizeof(v->path))
			return -EINVAL;
		/*
		 * The contents come from the container, whose home read
		 * them from its file: without the file here, the range is
		 * anonymous memory filled from there.
		 */
		file = filp_open(v->path, O_RDONLY | O_LARGEFILE, 0);
		if (IS_ERR(file))
			file = NULL;
	}
	if (!file)
		flags |= MAP_ANONYMOUS;
	if (v->flags & VM_GROWSDOWN)
		flags |= MAP_GROWSDOWN;

	if (cohort_range_matches(v, file)) {
		ret = cohort_mprotect(v->start, len, prot);
		goto out;
	}
	/*
	 * The range is mapped otherwise here (a file this node has and the
	 * node the task left has not, say): what it holds here is the
	 * task's memory all the same, and is put back in the new mapping.
	 */
	if (keep) {
		ret = cohort_range_keep(v->start, v->end, &kept);
		if (ret)
			goto out;
	}
	addr = vm_mmap(file, v->start, len, prot, flags,
		       file ? v->pgoff << PAGE_SHIFT : 0);
	if (IS_ERR_VALUE(addr))
		ret = addr;
	else if (addr != v->start)
		ret = -EFAULT;
	list_for_each_entry(k, &kept, node) {
		if (ret)
			break;
		ret = cohort_mm_install_page(current->mm, k->addr, false,
					     k->data);
	}
out:
	cohort_kept_free(&kept);
	if (file)
		fput(file);
	return ret;
}

/*
 * Maps @v, a range of an anonymous shared region, with the region linked
 * to @v->container here: the one this node has, or a new one linked now.
 */
static int cohort_vma_install_shared(const struct cohort_vma *v)
{
	unsigned long prot = cohort_vma_prot(v->flags);
	unsigned long len = v->end - v->start;
	struct vm_area_struct *vma;
	struct file *file;
	unsigned long addr;
	bool same;
	int ret;

	if (!v->container)
		return -EINVAL;
	file = cohort_share_file(v->container);
	if (!file) {
		file = cohort_share_new(v->size, v->flags);
		if (IS_ERR(file))
			return PTR_ERR(file);
		ret = cohort_share_link(file, v->container);
		if (ret < 0)
			goto out;
	}
	mmap_read_lock(current->mm);
	vma = vma_lookup(current->mm, v->start);
	same = vma && vma->vm_start <= v->start && vma->vm_end >= v->end &&
	       vma->vm_file && file_inode(vma->vm_file) == file_inode(file) &&
	       (vma->vm_flags & VM_SHARED) &&
	       linear_page_index(vma, v->start) == v->pgoff;
	mmap_read_unlock(current->mm);
	if (same) {
		ret = cohort_mprotect(v->start, len, prot);
		goto out;
	}
	addr = vm_mmap(file, v->start, len, prot, MAP_SHARED | MAP_FIXED,
		       v->pgoff << PAGE_SHIFT);
	if (IS_ERR_VALUE(addr))
		ret = addr;
	else
		ret = addr == v->start ? 0 : -EFAULT;
out:
	fput(file);
	return ret;
}

static bool cohort_vdso_at(unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	bool ok;

	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	ok = vma && vma->vm_start == addr &&
	     cohort_arch_vma_kind(vma) == COHORT_VMA_VVAR;
	mmap_read_unlock(mm);
	return ok;
}

/**
 * cohort_mm_install - give current the address space a task left with
 * @layout: the mm's fields
 * @vmas: the mappings, in address order, not overlapping
 * @nr: how many
 * @fresh: drop all of current's mappings first (a task just created)
 *
 * Ranges not in @vmas are unmapped; a range current already maps with the
 * same backing keeps its pages and gets the protection asked for; any other
 * is mapped afresh, with the pages current had there put back (unless
 * @fresh) as private, read-only pages: they are the task's memory by
 * address, whatever the mapping was. Files are opened by path on this node; a file
 * missing here is mapped as anonymous memory, whose contents the process
 * layer fetches from where the task came from.
 *
 * Return: 0 or a negative errno; the address space is then incomplete and
 * the caller must not let the task run.
 */
int cohort_mm_install(const struct cohort_mm_layout *layout,
		      const struct cohort_vma *vmas, unsigned int nr, bool fresh)
{
	struct mm_struct *mm = current->mm;
	unsigned long prev_end = 0;
	unsigned int i;
	int ret;

	if (!mm)
		return -EINVAL;
	if (fresh) {
		ret = vm_munmap(0, TASK_SIZE);
		if (ret)
			return ret;
	}
	for (i = 0; i < nr; i++) {
		if (vmas[i].start >= vmas[i].end || vmas[i].start < prev_end ||
		    vmas[i].end > TASK_SIZE || offset_in_page(vmas[i].start) ||
		    offset_in_page(vmas[i].end))
			return -EINVAL;
		if (vmas[i].start > prev_end) {
			ret = vm_munmap(prev_end, vmas[i].start - prev_end);
			if (ret)
				return ret;
		}
		prev_end = vmas[i].end;
		cond_resched();
	}
	if (prev_end < TASK_SIZE) {
		ret = vm_munmap(prev_end, TASK_SIZE - prev_end);
		if (ret)
			return ret;
	}

	for (i = 0; i < nr; i++) {
		switch (vmas[i].kind) {
		case COHORT_VMA_ANON:
		case COHORT_VMA_FILE:
		case COHORT_VMA_FILE_ANON:
			ret = cohort_vma_install(&vmas[i], !fresh);
			break;
		case COHORT_VMA_SHARED:
			ret = cohort_vma_install_shared(&vmas[i]);
			break;
		case COHORT_VMA_VVAR:
			ret = 0;
			if (!cohort_vdso_at(vmas[i].start))
				ret = cohort_arch_map_vdso(vmas[i].start);
			break;
		case COHORT_VMA_VDSO:
			/* Mapped with its data (VVAR), just before it. */
			ret = 0;
			break;
		default:
			ret = -EINVAL;
		}
		if (ret)
			return ret;
		cond_resched();
	}

	if (mmap_write_lock_killable(mm))
		return -EINTR;
	mm->start_code = layout->start_code;
	mm->end_code = layout->end_code;
	mm->start_data = layout->start_data;
	mm->end_data = layout->end_data;
	mm->start_brk = layout->start_brk;
	mm->brk = layout->brk;
	mm->start_stack = layout->start_stack;
	mm->arg_start = layout->arg_start;
	mm->arg_end = layout->arg_end;
	mm->env_start = layout->env_start;
	mm->env_end = layout->env_end;
	mmap_write_unlock(mm);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_mm_install);

/**
 * cohort_mm_get - take a reference on an address space that may be ending
 * @mm: the address space (its mm_struct kept alive by the caller)
 *
 * Return: true with an mm_users reference taken (drop it with mmput()),
 * false when the address space is already gone.
 */
bool cohort_mm_get(struct mm_struct *mm)
{
	return mmget_not_zero(mm);
}
EXPORT_SYMBOL_GPL(cohort_mm_get);

/**
 * cohort_mm_grab - keep an mm_struct, not its address space
 * @mm: the mm (a reference held by the caller)
 *
 * Drop it with cohort_mm_drop(); cohort_mm_get() reaches the address
 * space while it lasts.
 */
void cohort_mm_grab(struct mm_struct *mm)
{
	mmgrab(mm);
}
EXPORT_SYMBOL_GPL(cohort_mm_grab);

/**
 * cohort_mm_drop - drop what cohort_mm_grab() took
 * @mm: the mm
 */
void cohort_mm_drop(struct mm_struct *mm)
{
	mmdrop(mm);
}
EXPORT_SYMBOL_GPL(cohort_mm_drop);

/**
 * cohort_mm_zap - drop the pages of a range, keeping its mappings
 * @mm: the address space (a reference held by the caller)
 * @start: first address
 * @end: one past the last
 */
void cohort_mm_zap(struct mm_struct *mm, unsigned long start,
		   unsigned long end)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	mmap_read_lock(mm);
	vma_iter_init(&vmi, mm, start);
	for_each_vma_range(vmi, vma, end) {
		unsigned long from = max(start, vma->vm_start);
		unsigned long to = min(end, vma->vm_end);

		if (cohort_arch_vma_kind(vma) < 0)
			zap_page_range_single(vma, from, to - from, NULL);
	}
	mmap_read_unlock(mm);
}
EXPORT_SYMBOL_GPL(cohort_mm_zap);

/**
 * cohort_mm_fault_in - fault a page of current's address space in
 * @addr: its address
 *
 * The fault goes through handle_mm_fault() and so through the hub's fault
 * hooks: for a migrated task, the page is fetched from the node holding
 * it. Private read-only mappings are read with FOLL_FORCE.
 *
 * Return: 0, or -EFAULT when nothing can be mapped there.
 */
int cohort_mm_fault_in(unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	struct page *page;
	long got;

	if (!mm)
		return -EFAULT;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	got = get_user_pages_remote(mm, addr & PAGE_MASK, 1, FOLL_FORCE, &page,
				    NULL);
	mmap_read_unlock(mm);
	if (got != 1)
		return got < 0 ? got : -EFAULT;
	put_page(page);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_mm_fault_in);

/**
 * cohort_mm_present - the pages an address space has
 * @mm: the address space (a reference held by the caller)
 * @pages: where to store their page numbers (address >> PAGE_SHIFT)
 * @max: room at @pages
 *
 * Lists the pages mapped in @mm, the zero page and the vDSO excluded, in
 * address order.
 *
 * Return: how many there are (more than @max: only @max were stored), or
 * -EINTR.
 */
long cohort_mm_present(struct mm_struct *mm, u64 *pages, unsigned long max)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;
	struct folio_walk fw;
	unsigned long addr;
	long nr = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma_iter_init(&vmi, mm, 0);
	for_each_vma(vmi, vma) {
		if (cohort_arch_vma_kind(vma) >= 0)
			continue;
		for (addr = vma->vm_start; addr < vma->vm_end;
		     addr += PAGE_SIZE) {
			if (!folio_walk_start(&fw, vma, addr, 0))
				continue;
			folio_walk_end(&fw, vma);
			if (nr < max)
				pages[nr] = addr >> PAGE_SHIFT;
			nr++;
		}
		cond_resched();
	}
	mmap_read_unlock(mm);
	return nr;
}
EXPORT_SYMBOL_GPL(cohort_mm_present);

/**
 * cohort_vma_flags - a mapping's vm_flags, for Rust code
 * @vma: the mapping, locked by the caller
 *
 * Return: its vm_flags.
 */
unsigned long cohort_vma_flags(struct vm_area_struct *vma)
{
	return vma->vm_flags;
}
EXPORT_SYMBOL_GPL(cohort_vma_flags);

/**
 * cohort_mm_brk - the program break of an address space, for Rust code
 * @mm: the address space
 *
 * Return: its brk.
 */
unsigned long cohort_mm_brk(struct mm_struct *mm)
{
	return READ_ONCE(mm->brk);
}
EXPORT_SYMBOL_GPL(cohort_mm_brk);

/*
 * The memory linker's helpers. On each node, a linked address space is the
 * local store of its container's pages: a node's copy of a page is what
 * the address space maps at that address.
 */

/**
 * cohort_mm_read_page - copy a page of an address space, leaving it mapped
 * @mm: the address space (a reference held by the caller)
 * @addr: an address in the page
 * @buf: PAGE_SIZE bytes
 *
 * A page not mapped (never touched, or swapped out) is faulted in first,
 * as a read: the caller must not be a task of @mm, whose faults the page
 * layer handles; a page layer lets the faults a task takes on another
 * address space run locally.
 *
 * Return: 0, -EFAULT when no mapping covers @addr or it is special (the
 * vDSO), or -EINTR.
 */
int cohort_mm_read_page(struct mm_struct *mm, unsigned long addr, void *buf)
{
	struct vm_area_struct *vma;
	struct folio_walk fw;
	struct folio *folio;
	struct page *page;
	int ret = -EFAULT;
	void *src;

	addr &= PAGE_MASK;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	if (!vma || cohort_arch_vma_kind(vma) >= 0)
		goto out;
	folio = folio_walk_start(&fw, vma, addr, FW_ZEROPAGE);
	if (!folio) {
		if (get_user_pages_remote(mm, addr, 1, FOLL_FORCE, &page,
					  NULL) != 1)
			goto out;
		put_page(page);
		folio = folio_walk_start(&fw, vma, addr, FW_ZEROPAGE);
		if (!folio)
			goto out;
	}
	/* folio_walk_start() does not expose the shared zero page. */
	if (fw.page) {
		src = kmap_local_page(fw.page);
		memcpy(buf, src, PAGE_SIZE);
		kunmap_local(src);
	} else {
		memset(buf, 0, PAGE_SIZE);
	}
	folio_walk_end(&fw, vma);
	ret = 0;
out:
	mmap_read_unlock(mm);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_mm_read_page);

/**
 * cohort_vma_pte_state - what the page table has for an address
 * @vma: the mapping, locked as the fault handler got it (mmap or VMA lock)
 * @addr: the address
 *
 * Return: COHORT_PTE_NONE (nothing), COHORT_PTE_PRESENT (a page is mapped,
 * huge or not) or COHORT_PTE_OTHER (swapped out, or migrating).
 */
int cohort_vma_pte_state(struct vm_area_struct *vma, unsigned long addr)
{
	struct mm_struct *mm = vma->vm_mm;
	pmd_t *pmd, pmdval;
	spinlock_t *ptl;
	pte_t *ptep, pte;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	int state;

	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return COHORT_PTE_NONE;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return COHORT_PTE_NONE;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud))
		return COHORT_PTE_NONE;
	if (pud_leaf(*pud))
		return COHORT_PTE_PRESENT;
	pmd = pmd_offset(pud, addr);
	pmdval = pmdp_get_lockless(pmd);
	if (pmd_none(pmdval))
		return COHORT_PTE_NONE;
	if (pmd_trans_huge(pmdval) || pmd_devmap(pmdval))
		return COHORT_PTE_PRESENT;
	if (!pmd_present(pmdval))
		return COHORT_PTE_OTHER;
	ptep = pte_offset_map_lock(mm, pmd, addr, &ptl);
	if (!ptep)
		return COHORT_PTE_NONE;
	pte = ptep_get(ptep);
	if (pte_none(pte))
		state = COHORT_PTE_NONE;
	else if (pte_present(pte))
		state = COHORT_PTE_PRESENT;
	else
		state = COHORT_PTE_OTHER;
	pte_unmap_unlock(ptep, ptl);
	return state;
}
EXPORT_SYMBOL_GPL(cohort_vma_pte_state);

/**
 * cohort_vma_fresh_page - the contents of a page nobody wrote yet
 * @vma: the private mapping, locked as the fault handler got it
 * @addr: an address in the page
 * @buf: PAGE_SIZE bytes
 *
 * Zeros for anonymous memory; for a private file mapping, the file's
 * page (zeros past its end), read without mapping anything.
 *
 * Return: 0, or the read's negative errno.
 */
int cohort_vma_fresh_page(struct vm_area_struct *vma, unsigned long addr,
			  void *buf)
{
	loff_t pos;
	ssize_t n;

	memset(buf, 0, PAGE_SIZE);
	if (vma_is_anonymous(vma) || !vma->vm_file)
		return 0;
	pos = (loff_t)linear_page_index(vma, addr & PAGE_MASK) << PAGE_SHIFT;
	n = kernel_read(vma->vm_file, buf, PAGE_SIZE, &pos);
	return n < 0 ? n : 0;
}
EXPORT_SYMBOL_GPL(cohort_vma_fresh_page);

/**
 * cohort_mm_install_page - install a page in an address space, outside a fault
 * @mm: the address space (a reference held by the caller)
 * @addr: an address in the page
 * @writable: map it writable (when its mapping is); else read-only
 * @data: PAGE_SIZE bytes of contents
 *
 * Whatever was mapped there is dropped first: the page becomes a private
 * anonymous page with @data, as cohort_fault_install_page() makes it.
 *
 * Return: 0, -EFAULT when no private mapping covers @addr, -ENOMEM, or
 * -EINTR.
 */
int cohort_mm_install_page(struct mm_struct *mm, unsigned long addr,
			   bool writable, const void *data)
{
	struct vm_area_struct *vma;
	vm_fault_t ret;
	int err = -EFAULT;

	addr &= PAGE_MASK;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	if (!vma || cohort_arch_vma_kind(vma) >= 0 ||
	    (vma->vm_flags & VM_SHARED))
		goto out;
	zap_page_range_single(vma, addr, PAGE_SIZE, NULL);
	ret = cohort_fault_install_page(vma, addr, 0,
					writable ? COHORT_INSTALL_WRITE : 0,
					data, NULL, 0);
	if (ret & VM_FAULT_OOM)
		err = -ENOMEM;
	else if (!(ret & VM_FAULT_ERROR))
		err = 0;
out:
	mmap_read_unlock(mm);
	return err;
}
EXPORT_SYMBOL_GPL(cohort_mm_install_page);

static int cohort_wrprotect_pte(pte_t *pte, unsigned long addr,
				unsigned long next, struct mm_walk *walk)
{
	pte_t old = ptep_get(pte);
	struct page *page;

	if (!pte_present(old))
		return 0;
	page = vm_normal_page(walk->vma, addr, old);
	if (page && PageAnon(page) && PageAnonExclusive(page)) {
		/*
		 * Another node may now read a copy: the page must not be
		 * exclusive, or mprotect() would make it writable again
		 * without a fault. As KSM's write_protect_page(): clear
		 * the PTE, share the page unless it is pinned, map it back
		 * read-only.
		 */
		old = ptep_clear_flush(walk->vma, addr, pte);
		if (folio_try_share_anon_rmap_pte(page_folio(page), page))
			pr_warn_ratelimited("cohort: a pinned page at %#lx stays exclusive\n",
					    addr);
		set_pte_at(walk->mm, addr, pte, pte_wrprotect(old));
		return 0;
	}
	if (pte_write(old)) {
		ptep_set_wrprotect(walk->mm, addr, pte);
		flush_tlb_page(walk->vma, addr);
	}
	return 0;
}

static const struct mm_walk_ops cohort_wrprotect_ops = {
	.pte_entry = cohort_wrprotect_pte,
	.walk_lock = PGWALK_RDLOCK,
};

/**
 * cohort_mm_wrprotect - make a page of an address space read-only
 * @mm: the address space (a reference held by the caller); not current's
 * @addr: an address in the page
 *
 * The page stays mapped, so that reads go on without a fault, and the
 * next write faults; an anonymous page is no longer exclusive, so that
 * mprotect() cannot make it writable again (unless it is pinned, with a
 * log line). A page swapped out is read in first (a fault that was
 * reading it in finds the page table changed and starts again); a huge
 * page mapping there is split.
 *
 * Return: 0 (also when nothing is mapped there), or -EINTR.
 */
int cohort_mm_wrprotect(struct mm_struct *mm, unsigned long addr)
{
	struct mmu_notifier_range range;
	struct vm_area_struct *vma;
	struct page *page;

	addr &= PAGE_MASK;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	if (vma && cohort_arch_vma_kind(vma) < 0) {
		if (cohort_vma_pte_state(vma, addr) == COHORT_PTE_OTHER &&
		    get_user_pages_remote(mm, addr, 1, FOLL_FORCE, &page,
					  NULL) == 1)
			put_page(page);
		mmu_notifier_range_init(&range, MMU_NOTIFY_PROTECTION_PAGE, 0,
					mm, addr, addr + PAGE_SIZE);
		mmu_notifier_invalidate_range_start(&range);
		walk_page_range_vma(vma, addr, addr + PAGE_SIZE,
				    &cohort_wrprotect_ops, NULL);
		mmu_notifier_invalidate_range_end(&range);
	}
	mmap_read_unlock(mm);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_mm_wrprotect);
