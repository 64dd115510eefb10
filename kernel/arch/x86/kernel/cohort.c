// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort: the x86-64 part of moving a task between nodes. A task's user
 * state travels as one opaque blob: a header, struct user_regs_struct
 * (with fs_base and gs_base) and the FPU image ptrace's regsets use
 * (XSAVE when the CPU has it, else FXSAVE). Every node of a cluster runs
 * the same kernel on the same CPU model, and the header says which sizes
 * the sender used, so a mismatch is refused rather than misread.
 */
#include <linux/cohort.h>
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/regset.h>
#include <linux/sched/task_stack.h>
#include <asm/elf.h>
#include <asm/fpu/regset.h>
#include <asm/fsgsbase.h>
#include <asm/prctl.h>
#include <asm/processor.h>
#include <asm/proto.h>
#include <asm/segment.h>
#include <asm/syscall.h>
#include <asm/user.h>
#include <asm/vdso.h>
#include <asm/unistd.h>

#define COHORT_ARCH_MAGIC	0x36387843	/* "Cx86" */

/* The flags a user may set, as ptrace's putreg() allows. */
#define COHORT_USER_FLAGS	(X86_EFLAGS_CF | X86_EFLAGS_PF |	\
				 X86_EFLAGS_AF | X86_EFLAGS_ZF |	\
				 X86_EFLAGS_SF | X86_EFLAGS_TF |	\
				 X86_EFLAGS_DF | X86_EFLAGS_OF |	\
				 X86_EFLAGS_RF | X86_EFLAGS_AC)

struct cohort_arch_header {
	u32 magic;
	u32 regs_size;
	u32 fpu_size;
	u32 reserved;
};

/**
 * cohort_arch_state_size - size of the blob cohort_arch_save() writes
 *
 * Return: the size in bytes.
 */
size_t cohort_arch_state_size(void)
{
	return sizeof(struct cohort_arch_header) +
	       sizeof(struct user_regs_struct) + fpregs_user_size();
}
EXPORT_SYMBOL_GPL(cohort_arch_state_size);

/**
 * cohort_arch_save - save current's user registers and FPU state
 * @buf: where to write
 * @size: room at @buf, at least cohort_arch_state_size()
 *
 * Return: the bytes written, -ENOSPC, or -EOPNOTSUPP for a task that is not
 * a plain 64-bit one.
 */
long cohort_arch_save(void *buf, size_t size)
{
	struct pt_regs *regs = task_pt_regs(current);
	struct cohort_arch_header *hdr = buf;
	struct user_regs_struct *u = buf + sizeof(*hdr);
	unsigned int fpu_size = fpregs_user_size();
	int ret;

	if (size < cohort_arch_state_size())
		return -ENOSPC;
	if (!fpu_size || regs->cs != __USER_CS || test_thread_flag(TIF_ADDR32))
		return -EOPNOTSUPP;

	hdr->magic = COHORT_ARCH_MAGIC;
	hdr->regs_size = sizeof(*u);
	hdr->fpu_size = fpu_size;
	hdr->reserved = 0;

	memset(u, 0, sizeof(*u));
	u->r15 = regs->r15;
	u->r14 = regs->r14;
	u->r13 = regs->r13;
	u->r12 = regs->r12;
	u->bp = regs->bp;
	u->bx = regs->bx;
	u->r11 = regs->r11;
	u->r10 = regs->r10;
	u->r9 = regs->r9;
	u->r8 = regs->r8;
	u->ax = regs->ax;
	u->cx = regs->cx;
	u->dx = regs->dx;
	u->si = regs->si;
	u->di = regs->di;
	u->orig_ax = regs->orig_ax;
	u->ip = regs->ip;
	u->cs = regs->cs;
	u->flags = regs->flags;
	u->sp = regs->sp;
	u->ss = regs->ss;
	u->fs_base = x86_fsbase_read_task(current);
	u->gs_base = x86_gsbase_read_task(current);

	/*
	 * Work that interrupted a system call runs before the call is set up
	 * to restart (from get_signal()): save the registers the task
	 * resumes with, as arch_do_signal_or_restart() leaves them when no
	 * handler runs. A call restarted through restart_syscall(2) resumes
	 * so only when its restart block travels (cohort_restart_travels());
	 * otherwise it returns -EINTR. Work that runs once the call is set up
	 * to restart (ax holds the number of restart_syscall(2)) leaves the
	 * registers as they are; cohort_proc_load() then gives the task on
	 * the other node the block that travelled, or one that returns
	 * -EINTR.
	 */
	if ((long)u->orig_ax >= 0) {
		switch ((long)u->ax) {
		case -ERESTARTSYS:
		case -ERESTARTNOINTR:
		case -ERESTARTNOHAND:
			u->ax = u->orig_ax;
			u->ip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK:
			if (cohort_restart_travels()) {
				u->ax = __NR_restart_syscall;
				u->ip -= 2;
			} else {
				u->ax = -EINTR;
			}
			break;
		}
	}

	ret = fpregs_user_get((struct membuf){ .p = u + 1, .left = fpu_size });
	if (ret)
		return ret;
	return cohort_arch_state_size();
}
EXPORT_SYMBOL_GPL(cohort_arch_save);

/**
 * cohort_arch_in_restart - whether current resumes in restart_syscall(2)
 *	to go on with a call that nanosleep(), clock_nanosleep() or poll()
 *	began
 *
 * For a task stopped on its way back to user space: true when the call
 * was interrupted and is set up to restart (-ERESTART_RESTARTBLOCK), or
 * has been (the number of restart_syscall(2) in ax, the syscall
 * instruction next). The sleeps never return that number themselves; a
 * poll() that found that many descriptors ready does, and then the block
 * the caller finds is an old one: it travels and is never used, as the
 * registers return the count. The caller checks that the restart block is
 * one of these calls'.
 *
 * Return: true or false.
 */
bool cohort_arch_in_restart(void)
{
	struct pt_regs *regs = task_pt_regs(current);

	if (!user_64bit_mode(regs) || in_ia32_syscall() ||
	    (long)regs->orig_ax < 0)
		return false;
	if ((long)regs->ax == -ERESTART_RESTARTBLOCK)
		return true;
	if (regs->ax != __NR_restart_syscall)
		return false;
	switch (regs->orig_ax) {
	case __NR_nanosleep:
	case __NR_clock_nanosleep:
	case __NR_poll:
	case __NR_restart_syscall:
		return true;
	}
	return false;
}

/**
 * cohort_arch_load - load a blob from cohort_arch_save() into current
 * @buf: the blob
 * @len: its length
 *
 * Current must be on its way back to user space (task work): it resumes
 * there with these registers. The system call it may have been in is not
 * restarted here: the sender already rewound one that had to be.
 *
 * Return: 0, or -EINVAL for a blob this node cannot load.
 */
int cohort_arch_load(const void *buf, size_t len)
{
	const struct cohort_arch_header *hdr = buf;
	const struct user_regs_struct *u = buf + sizeof(*hdr);
	struct pt_regs *regs = task_pt_regs(current);
	long ret;

	if (len != cohort_arch_state_size() ||
	    hdr->magic != COHORT_ARCH_MAGIC ||
	    hdr->regs_size != sizeof(*u) ||
	    hdr->fpu_size != fpregs_user_size())
		return -EINVAL;
	if (u->cs != __USER_CS || u->ss != __USER_DS ||
	    u->ip >= TASK_SIZE_MAX || u->sp >= TASK_SIZE_MAX ||
	    u->fs_base >= TASK_SIZE_MAX || u->gs_base >= TASK_SIZE_MAX)
		return -EINVAL;

	ret = fpregs_user_load(u + 1, hdr->fpu_size);
	if (ret)
		return ret;
	ret = do_arch_prctl_64(current, ARCH_SET_FS, u->fs_base);
	if (!ret)
		ret = do_arch_prctl_64(current, ARCH_SET_GS, u->gs_base);
	if (ret)
		return ret;

	regs->r15 = u->r15;
	regs->r14 = u->r14;
	regs->r13 = u->r13;
	regs->r12 = u->r12;
	regs->bp = u->bp;
	regs->bx = u->bx;
	regs->r11 = u->r11;
	regs->r10 = u->r10;
	regs->r9 = u->r9;
	regs->r8 = u->r8;
	regs->ax = u->ax;
	regs->cx = u->cx;
	regs->dx = u->dx;
	regs->si = u->si;
	regs->di = u->di;
	regs->orig_ax = -1;
	regs->ip = u->ip;
	regs->flags = (regs->flags & ~COHORT_USER_FLAGS) |
		      (u->flags & COHORT_USER_FLAGS);
	regs->sp = u->sp;
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_arch_load);

/**
 * cohort_arch_fresh_user - make current's registers those of a 64-bit user
 *	process, as after execve() of a program at address 0
 *
 * For a task just given an empty mm by cohort_exec_fresh_mm(): its
 * registers are a kernel thread's until cohort_arch_load() sets the
 * process's own; this sets the user segments and the 64-bit personality
 * they need.
 */
void cohort_arch_fresh_user(void)
{
	set_personality_64bit();
	start_thread(task_pt_regs(current), 0, 0);
}
EXPORT_SYMBOL_GPL(cohort_arch_fresh_user);

/**
 * cohort_arch_map_vdso - map the vDSO of current at the address it had
 * @addr: start of its data (vvar) mapping on the node it came from
 *
 * Return: 0, -EEXIST if a vDSO is mapped already, or another errno.
 */
int cohort_arch_map_vdso(unsigned long addr)
{
	return map_vdso_once(&vdso_image_64, addr);
}
EXPORT_SYMBOL_GPL(cohort_arch_map_vdso);

/**
 * cohort_arch_in_vdso - whether current stopped inside its vDSO's code
 * @regs: current's user registers
 *
 * The vDSO's clock functions take the node's clock and the time
 * namespace's offsets as given for the length of a call: a task that went
 * on with such a call on another node would mix the two nodes' clocks, or
 * read a namespace page that is not mapped there.
 *
 * Return: true when @regs' instruction pointer is in the vDSO text.
 */
bool cohort_arch_in_vdso(struct pt_regs *regs)
{
	struct mm_struct *mm = current->mm;
	unsigned long vdso;

	if (!mm || !mm->context.vdso_image || !user_mode(regs))
		return false;
	vdso = (unsigned long)mm->context.vdso;
	return regs->ip >= vdso && regs->ip - vdso < mm->context.vdso_image->size;
}

/**
 * cohort_arch_vma_kind - tell the vDSO mappings apart
 * @vma: a mapping of current's address space, mmap lock held
 *
 * Return: COHORT_VMA_VDSO, COHORT_VMA_VVAR or -1 for any other mapping.
 */
int cohort_arch_vma_kind(struct vm_area_struct *vma)
{
	unsigned long vdso = (unsigned long)vma->vm_mm->context.vdso;

	if (!vdso || !vma->vm_ops || vma_is_anonymous(vma) || vma->vm_file)
		return -1;
	if (vma->vm_start == vdso)
		return COHORT_VMA_VDSO;
	if (vma->vm_end == vdso)
		return COHORT_VMA_VVAR;
	return -1;
}

/**
 * cohort_arch_set_syscall_args - change the arguments of the system call
 *	current is entering (before it runs)
 * @regs: current's user registers
 * @args: the six arguments
 */
void cohort_arch_set_syscall_args(struct pt_regs *regs,
				  const unsigned long *args)
{
	regs->di = args[0];
	regs->si = args[1];
	regs->dx = args[2];
	regs->r10 = args[3];
	regs->r8 = args[4];
	regs->r9 = args[5];
}

/**
 * cohort_arch_run_syscall - run a system call in current, as if from user
 *	space, with these arguments
 * @nr: the system call number
 * @args: its six arguments; pointers are user addresses of current's mm
 *
 * For a shadow that runs a path call of its migrated task.
 *
 * Return: what the system call returns.
 */
long cohort_arch_run_syscall(unsigned int nr, const unsigned long *args)
{
	struct pt_regs regs = {};

	regs.di = args[0];
	regs.si = args[1];
	regs.dx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	regs.orig_ax = nr;
	return x64_sys_call(&regs, nr);
}
