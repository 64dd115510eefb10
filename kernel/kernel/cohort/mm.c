// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: helpers for the address space of a migrated task. A task
 * leaves with the description of its mappings (cohort_mm_describe()); where
 * it arrives they are replayed (cohort_mm_install()), empty: its pages come
 * on demand, each taken from the one node that holds it
 * (cohort_mm_take_page()) and installed by the fault handler
 * (cohort_fault_install_page(), in mm/memory.c).
 */
#include <linux/dcache.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/pagewalk.h>
#include <linux/sched/mm.h>

#include "internal.h"

static int cohort_vma_describe(struct vm_area_struct *vma,
			       struct cohort_vma *out)
{
	char *path;
	int kind;

	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->flags = vma->vm_flags;
	out->pgoff = 0;
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
	/* A shared writable mapping would need its pages kept coherent. */
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
 * Return: the number of mappings (more than @max: call again with room for
 * them), -EOPNOTSUPP for a mapping migration cannot carry (shared writable,
 * device, huge pages), or -EINTR.
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

static int cohort_vma_install(const struct cohort_vma *v)
{
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
		 * The contents come from the node the task left (see
		 * cohort_mm_take_page()): without the file here, the range
		 * is anonymous memory filled from there.
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
	} else {
		addr = vm_mmap(file, v->start, len, prot, flags,
			       file ? v->pgoff << PAGE_SHIFT : 0);
		if (IS_ERR_VALUE(addr))
			ret = addr;
		else if (addr != v->start)
			ret = -EFAULT;
	}
	if (file)
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
 * is mapped afresh, empty. Files are opened by path on this node; a file
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
			ret = cohort_vma_install(&vmas[i]);
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
 * cohort_mm_take_page - copy a page out of an address space and unmap it
 * @mm: the address space (a reference held by the caller)
 * @addr: the page's address
 * @buf: PAGE_SIZE bytes
 *
 * The page leaves @mm: the next access there faults, so the process layer
 * can fetch it back from whichever node holds it then.
 *
 * A page of a file mapping that @mm never touched is read in first, so
 * its contents always come from here.
 *
 * Return: 1 with the contents in @buf; 0 when @mm has no page there (never
 * touched anonymous memory, only read as zeroes, or no mapping), the
 * caller then fills it as a first touch would; -EINTR.
 */
int cohort_mm_take_page(struct mm_struct *mm, unsigned long addr, void *buf)
{
	struct vm_area_struct *vma;
	struct folio_walk fw;
	struct folio *folio;
	void *src;
	int ret = 0;

	addr &= PAGE_MASK;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vma_lookup(mm, addr);
	if (!vma || cohort_arch_vma_kind(vma) >= 0)
		goto out;
	folio = folio_walk_start(&fw, vma, addr, 0);
	/*
	 * A private mapping of /dev/zero is anonymous memory with a file:
	 * reading it in would map the zero page here, hiding the page that
	 * another node holds from the next fault.
	 */
	if (!folio && vma->vm_file && !vma_is_anonymous(vma)) {
		/*
		 * A file page nobody touched here: read it in, so that the
		 * taker gets the contents without needing the file itself.
		 */
		struct page *page;

		if (get_user_pages_remote(mm, addr, 1, FOLL_FORCE, &page,
					  NULL) != 1)
			goto out;
		put_page(page);
		folio = folio_walk_start(&fw, vma, addr, 0);
	}
	if (!folio)
		goto out;
	src = kmap_local_page(fw.page);
	memcpy(buf, src, PAGE_SIZE);
	kunmap_local(src);
	folio_walk_end(&fw, vma);
	zap_page_range_single(vma, addr, PAGE_SIZE, NULL);
	ret = 1;
out:
	mmap_read_unlock(mm);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_mm_take_page);

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
