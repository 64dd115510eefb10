// SPDX-License-Identifier: GPL-2.0
//! Task migration between nodes with shadow tasks, and distributed exit.
//!
//! This is the handshake of the Popcorn thesis (chapter 5):
//!
//! - A task migrates itself at a safe point: its state goes to the
//!   destination in one message ([`TaskMsg::Migrate`]) and the task stays
//!   behind as a *shadow* ([`TaskAction::BecomeShadow`]), which keeps its
//!   resources and its share of the address space.
//! - The task carries the record of the nodes it visited. On a node it
//!   visited before, its shadow is woken with the *migrate* disposition
//!   ([`TaskAction::ResumeShadow`]); elsewhere a new task is created, joining
//!   the local thread group if one is there, else installing the group's
//!   saved address space, else a fresh one ([`MmSource`]).
//! - An exit sets the *exit* disposition on every shadow of the task
//!   ([`TaskAction::KillShadow`]); only visited nodes hold one, so only they
//!   are told.
//! - The last local member of a group to exit while members run elsewhere
//!   saves the address space ([`TaskAction::SaveMm`]) so remote members can
//!   still fetch mappings from it; when the last distributed member exits,
//!   every node that hosted the group drops its saved address space and the
//!   group ([`TaskAction::DropSavedMm`], [`TaskAction::GroupGone`]).
//!
//! Counting members: rather than polling every node at each exit (the
//! thesis' "counting remote group members"), the group's origin node keeps
//! the number of live members. A clone on another node is counted before the
//! clone returns ([`TaskMsg::MemberJoin`], acknowledged), and each exit sends
//! one [`TaskMsg::MemberExit`] carrying the nodes the task visited, so when
//! the count reaches zero the origin knows every node that must be told.
//! A member is counted before any exit can uncount it, so the count never
//! reaches zero early.

use super::error::Error;
use super::node::{NodeId, NodeSet, MAX_NODES};
use super::sink::Sink;
use super::table::Table;

/// Cluster-wide identity of a task: its node of origin and pid there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// Node where the task was created.
    pub origin: NodeId,
    /// Its pid on that node.
    pub pid: u32,
}

/// Cluster-wide identity of a distributed thread group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId {
    /// Node where the group was created; it counts the live members.
    pub origin: NodeId,
    /// The tgid on that node.
    pub tgid: u32,
}

/// Where a task created by an incoming migration gets its address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmSource {
    /// Join the local thread group (its members or shadows are here).
    LocalGroup,
    /// Install the address space saved when the last local member exited.
    SavedMm,
    /// Install a new address space from the layout in the migration message.
    Fresh,
}

/// One task as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task's thread group.
    pub group: GroupId,
    /// Whether the task runs here (otherwise it is a shadow).
    pub running: bool,
    /// Whether a remote clone is counted yet (the clone waits until it is).
    pub counted: bool,
    /// Nodes the task has run on.
    pub visited: NodeSet,
}

/// One thread group as this node sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupRecord {
    /// Tasks of the group here, running or shadows (they share the mm).
    pub local_tasks: u32,
    /// Tasks of the group running here.
    pub running: u32,
    /// The address space is kept with no local task.
    pub saved_mm: bool,
    /// The group has exited; the record goes with its last shadow.
    pub ended: bool,
    /// Origin only: live members cluster-wide.
    pub live: u32,
    /// Origin only: nodes that hosted the group (from exits).
    pub hosts: NodeSet,
}

/// A message between the migration layers of two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskMsg {
    /// A task moves to the destination (its state travels with it).
    Migrate {
        /// The task.
        task: TaskId,
        /// Its thread group.
        group: GroupId,
        /// Nodes it visited, destination included.
        visited: NodeSet,
    },
    /// A task exited: its shadow here must exit.
    TaskExit {
        /// The task.
        task: TaskId,
    },
    /// To the origin: count one more member (a clone made elsewhere).
    MemberJoin {
        /// The group.
        group: GroupId,
        /// The clone, named in the answer.
        task: TaskId,
    },
    /// From the origin: the clone is counted.
    MemberJoinAck {
        /// The clone.
        task: TaskId,
    },
    /// To the origin: one member exited, having visited these nodes.
    MemberExit {
        /// The group.
        group: GroupId,
        /// Nodes the exiting task visited.
        visited: NodeSet,
    },
    /// From the origin: the last member exited.
    GroupExit {
        /// The group.
        group: GroupId,
    },
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAction {
    /// Send `msg` to every node of `to`.
    Send {
        /// Destination nodes (never this node).
        to: NodeSet,
        /// The message.
        msg: TaskMsg,
    },
    /// The migrating task stops here and sleeps as a shadow.
    BecomeShadow {
        /// The task.
        task: TaskId,
    },
    /// Create a task to host the incoming state, with address space `mm`.
    CreateTask {
        /// The task.
        task: TaskId,
        /// Where its address space comes from.
        mm: MmSource,
    },
    /// Install the incoming state in the shadow and wake it (*migrate*).
    ResumeShadow {
        /// The task.
        task: TaskId,
    },
    /// Wake the shadow to exit (*exit* disposition).
    KillShadow {
        /// The task.
        task: TaskId,
    },
    /// A remote clone is counted: it (and its parent) may run on.
    CloneReady {
        /// The clone.
        task: TaskId,
    },
    /// Keep the group's address space: no local task uses it any more.
    SaveMm {
        /// The group.
        group: GroupId,
    },
    /// Free the group's saved address space.
    DropSavedMm {
        /// The group.
        group: GroupId,
    },
    /// The group is gone here: free its per-node state (lock space, ...).
    GroupGone {
        /// The group.
        group: GroupId,
    },
}

/// The migration layer of one node, over caller-provided tables.
#[derive(Debug)]
pub struct TaskNode<TT: Table<TaskId, TaskRecord>, GT: Table<GroupId, GroupRecord>> {
    me: NodeId,
    nodes: usize,
    tasks: TT,
    groups: GT,
}

impl<TT: Table<TaskId, TaskRecord>, GT: Table<GroupId, GroupRecord>> TaskNode<TT, GT> {
    /// Creates the migration layer of node `me` in a cluster of `nodes`.
    pub fn new(me: NodeId, nodes: usize, tasks: TT, groups: GT) -> Result<Self, Error> {
        if nodes == 0 || nodes > MAX_NODES || me.index() >= nodes {
            return Err(Error::Invalid);
        }
        Ok(TaskNode {
            me,
            nodes,
            tasks,
            groups,
        })
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.me
    }

    /// The record of `task` here.
    pub fn task(&self, task: TaskId) -> Option<&TaskRecord> {
        self.tasks.get(&task)
    }

    /// The record of `group` here.
    pub fn group(&self, group: GroupId) -> Option<&GroupRecord> {
        self.groups.get(&group)
    }

    /// The task table.
    pub fn tasks(&self) -> &TT {
        &self.tasks
    }

    /// The group table.
    pub fn groups(&self) -> &GT {
        &self.groups
    }

    /// A new distributed thread group, with `leader` running here.
    pub fn create_group(&mut self, group: GroupId, leader: TaskId) -> Result<(), Error> {
        if group.origin != self.me || leader.origin != self.me {
            return Err(Error::Invalid);
        }
        if self.groups.get(&group).is_some() || self.tasks.get(&leader).is_some() {
            return Err(Error::Invalid);
        }
        self.groups.insert(
            group,
            GroupRecord {
                local_tasks: 1,
                running: 1,
                live: 1,
                hosts: NodeSet::single(self.me),
                ..GroupRecord::default()
            },
        )?;
        let record = TaskRecord {
            group,
            running: true,
            counted: true,
            visited: NodeSet::single(self.me),
        };
        if let Err(e) = self.tasks.insert(leader, record) {
            self.groups.remove(&group);
            return Err(e);
        }
        Ok(())
    }

    /// A running member cloned `task` here, into `group`. On the origin the
    /// clone is counted at once ([`TaskAction::CloneReady`] now), elsewhere
    /// once the origin answers; until then neither clone nor parent may
    /// migrate or exit.
    pub fn clone_task(
        &mut self,
        task: TaskId,
        group: GroupId,
        out: &mut dyn Sink<TaskAction>,
    ) -> Result<(), Error> {
        let mut grp = *self.groups.get(&group).ok_or(Error::NotFound)?;
        if task.origin != self.me
            || grp.running == 0
            || grp.ended
            || self.tasks.get(&task).is_some()
        {
            return Err(Error::Invalid);
        }
        let local_origin = group.origin == self.me;
        self.tasks.insert(
            task,
            TaskRecord {
                group,
                running: true,
                counted: local_origin,
                visited: NodeSet::single(self.me),
            },
        )?;
        grp.local_tasks += 1;
        grp.running += 1;
        if local_origin {
            grp.live += 1;
            out.push(TaskAction::CloneReady { task });
        } else {
            out.push(TaskAction::Send {
                to: NodeSet::single(group.origin),
                msg: TaskMsg::MemberJoin { group, task },
            });
        }
        self.put_group(group, grp);
        Ok(())
    }

    /// Starts migrating `task`, running here, to node `to`.
    pub fn migrate(
        &mut self,
        task: TaskId,
        to: NodeId,
        out: &mut dyn Sink<TaskAction>,
    ) -> Result<(), Error> {
        if to == self.me || to.index() >= self.nodes {
            return Err(Error::Invalid);
        }
        let mut rec = *self.tasks.get(&task).ok_or(Error::NotFound)?;
        if !rec.running {
            return Err(Error::Invalid);
        }
        if !rec.counted {
            return Err(Error::Busy);
        }
        let mut grp = *self.groups.get(&rec.group).ok_or(Error::Protocol)?;
        rec.running = false;
        rec.visited.insert(to);
        grp.running = grp.running.saturating_sub(1);
        out.push(TaskAction::Send {
            to: NodeSet::single(to),
            msg: TaskMsg::Migrate {
                task,
                group: rec.group,
                visited: rec.visited,
            },
        });
        out.push(TaskAction::BecomeShadow { task });
        self.put_task(task, rec);
        self.put_group(rec.group, grp);
        Ok(())
    }

    /// `task`, running here, exits.
    pub fn exit(&mut self, task: TaskId, out: &mut dyn Sink<TaskAction>) -> Result<(), Error> {
        let rec = *self.tasks.get(&task).ok_or(Error::NotFound)?;
        if !rec.running {
            return Err(Error::Invalid);
        }
        if !rec.counted {
            return Err(Error::Busy);
        }
        let group = rec.group;
        let mut grp = *self.groups.get(&group).ok_or(Error::Protocol)?;
        self.tasks.remove(&task);
        let shadows = rec.visited.without(self.me);
        if !shadows.is_empty() {
            out.push(TaskAction::Send {
                to: shadows,
                msg: TaskMsg::TaskExit { task },
            });
        }
        grp.running = grp.running.saturating_sub(1);
        grp.local_tasks = grp.local_tasks.saturating_sub(1);
        if group.origin == self.me {
            grp.live = grp.live.saturating_sub(1);
            grp.hosts = grp.hosts.union(rec.visited);
            if grp.live == 0 {
                self.end_group(group, &mut grp, out);
            }
        } else {
            out.push(TaskAction::Send {
                to: NodeSet::single(group.origin),
                msg: TaskMsg::MemberExit {
                    group,
                    visited: rec.visited,
                },
            });
        }
        self.after_task_left(group, grp, out);
        Ok(())
    }

    /// Handles a message from node `from`.
    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: TaskMsg,
        out: &mut dyn Sink<TaskAction>,
    ) -> Result<(), Error> {
        if from.index() >= self.nodes || from == self.me {
            return Err(Error::Protocol);
        }
        match msg {
            TaskMsg::Migrate {
                task,
                group,
                visited,
            } => self.on_migrate(task, group, visited, out),
            TaskMsg::TaskExit { task } => {
                let rec = *self.tasks.get(&task).ok_or(Error::Protocol)?;
                if rec.running {
                    return Err(Error::Protocol);
                }
                let mut grp = *self.groups.get(&rec.group).ok_or(Error::Protocol)?;
                self.tasks.remove(&task);
                grp.local_tasks = grp.local_tasks.saturating_sub(1);
                out.push(TaskAction::KillShadow { task });
                self.after_task_left(rec.group, grp, out);
                Ok(())
            }
            TaskMsg::MemberJoin { group, task } => {
                let mut grp = self.origin_group(group)?;
                if task.origin != from {
                    return Err(Error::Protocol);
                }
                grp.live = grp.live.checked_add(1).ok_or(Error::Protocol)?;
                out.push(TaskAction::Send {
                    to: NodeSet::single(from),
                    msg: TaskMsg::MemberJoinAck { task },
                });
                self.put_group(group, grp);
                Ok(())
            }
            TaskMsg::MemberJoinAck { task } => {
                let mut rec = *self.tasks.get(&task).ok_or(Error::Protocol)?;
                if rec.counted {
                    return Err(Error::Protocol);
                }
                rec.counted = true;
                self.put_task(task, rec);
                out.push(TaskAction::CloneReady { task });
                Ok(())
            }
            TaskMsg::MemberExit { group, visited } => {
                let mut grp = self.origin_group(group)?;
                grp.live = grp.live.checked_sub(1).ok_or(Error::Protocol)?;
                grp.hosts = grp.hosts.union(visited);
                if grp.live == 0 {
                    self.end_group(group, &mut grp, out);
                }
                self.after_task_left(group, grp, out);
                Ok(())
            }
            TaskMsg::GroupExit { group } => {
                if from != group.origin {
                    return Err(Error::Protocol);
                }
                let mut grp = *self.groups.get(&group).ok_or(Error::Protocol)?;
                if grp.ended || grp.running != 0 {
                    return Err(Error::Protocol);
                }
                grp.ended = true;
                self.after_task_left(group, grp, out);
                Ok(())
            }
        }
    }

    fn on_migrate(
        &mut self,
        task: TaskId,
        group: GroupId,
        visited: NodeSet,
        out: &mut dyn Sink<TaskAction>,
    ) -> Result<(), Error> {
        if !visited.contains(self.me) {
            return Err(Error::Protocol);
        }
        let known = self.groups.get(&group).copied();
        if known.is_some_and(|g| g.ended) {
            return Err(Error::Protocol);
        }
        if let Some(mut rec) = self.tasks.get(&task).copied() {
            // A shadow of the task is here: wake it with the migrate disposition.
            if rec.running || rec.group != group {
                return Err(Error::Protocol);
            }
            let mut grp = known.ok_or(Error::Protocol)?;
            rec.running = true;
            rec.visited = rec.visited.union(visited);
            grp.running += 1;
            self.put_task(task, rec);
            self.put_group(group, grp);
            out.push(TaskAction::ResumeShadow { task });
            return Ok(());
        }
        let mut grp = match known {
            Some(grp) => grp,
            None => {
                self.groups.insert(group, GroupRecord::default())?;
                GroupRecord::default()
            }
        };
        let record = TaskRecord {
            group,
            running: true,
            counted: true,
            visited,
        };
        if let Err(e) = self.tasks.insert(task, record) {
            if known.is_none() {
                self.groups.remove(&group);
            }
            return Err(e);
        }
        let mm = if grp.local_tasks > 0 {
            MmSource::LocalGroup
        } else if grp.saved_mm {
            grp.saved_mm = false;
            MmSource::SavedMm
        } else {
            MmSource::Fresh
        };
        grp.local_tasks += 1;
        grp.running += 1;
        self.put_group(group, grp);
        out.push(TaskAction::CreateTask { task, mm });
        Ok(())
    }

    fn origin_group(&self, group: GroupId) -> Result<GroupRecord, Error> {
        if group.origin != self.me {
            return Err(Error::Protocol);
        }
        match self.groups.get(&group) {
            Some(grp) if !grp.ended => Ok(*grp),
            _ => Err(Error::Protocol),
        }
    }

    /// Origin: the last member exited; tell every node that hosted the group.
    fn end_group(&self, group: GroupId, grp: &mut GroupRecord, out: &mut dyn Sink<TaskAction>) {
        grp.ended = true;
        let others = grp.hosts.without(self.me);
        if !others.is_empty() {
            out.push(TaskAction::Send {
                to: others,
                msg: TaskMsg::GroupExit { group },
            });
        }
    }

    /// Bookkeeping once a task (running or shadow) left the node.
    fn after_task_left(
        &mut self,
        group: GroupId,
        mut grp: GroupRecord,
        out: &mut dyn Sink<TaskAction>,
    ) {
        if grp.local_tasks == 0 {
            if grp.ended {
                if grp.saved_mm {
                    out.push(TaskAction::DropSavedMm { group });
                }
                out.push(TaskAction::GroupGone { group });
                self.groups.remove(&group);
                return;
            }
            if !grp.saved_mm {
                grp.saved_mm = true;
                out.push(TaskAction::SaveMm { group });
            }
        }
        self.put_group(group, grp);
    }

    fn put_task(&mut self, task: TaskId, rec: TaskRecord) {
        if let Some(slot) = self.tasks.get_mut(&task) {
            *slot = rec;
        }
    }

    fn put_group(&mut self, group: GroupId, grp: GroupRecord) {
        if let Some(slot) = self.groups.get_mut(&group) {
            *slot = grp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::ArrayMap;
    use super::*;
    use std::vec::Vec;

    type Node = TaskNode<ArrayMap<TaskId, TaskRecord, 8>, ArrayMap<GroupId, GroupRecord, 4>>;

    fn settle(
        nodes: &mut [Node],
        mut pending: Vec<(NodeId, TaskAction)>,
    ) -> Vec<(NodeId, TaskAction)> {
        let mut done = Vec::new();
        while !pending.is_empty() {
            let (node, action) = pending.remove(0);
            if let TaskAction::Send { to, msg } = action {
                for dst in to.iter() {
                    let mut out = Vec::new();
                    nodes[dst.index()].on_message(node, msg, &mut out).unwrap();
                    pending.extend(out.into_iter().map(|a| (dst, a)));
                }
            } else {
                done.push((node, action));
            }
        }
        done
    }

    fn cluster(n: usize) -> Vec<Node> {
        (0..n)
            .map(|i| Node::new(NodeId(i as u8), n, ArrayMap::new(), ArrayMap::new()).unwrap())
            .collect()
    }

    #[test]
    fn shadows_migrate_back_and_exit_everywhere() {
        let mut nodes = cluster(3);
        let group = GroupId {
            origin: NodeId(0),
            tgid: 10,
        };
        let task = TaskId {
            origin: NodeId(0),
            pid: 10,
        };
        nodes[0].create_group(group, task).unwrap();
        let hop = |nodes: &mut Vec<Node>, from: u8, to: u8| {
            let mut out = Vec::new();
            nodes[from as usize]
                .migrate(task, NodeId(to), &mut out)
                .unwrap();
            settle(nodes, out.into_iter().map(|a| (NodeId(from), a)).collect())
        };
        let done = hop(&mut nodes, 0, 1);
        assert!(done.contains(&(
            NodeId(1),
            TaskAction::CreateTask {
                task,
                mm: MmSource::Fresh
            }
        )));
        let done = hop(&mut nodes, 1, 0);
        assert!(done.contains(&(NodeId(0), TaskAction::ResumeShadow { task })));
        hop(&mut nodes, 0, 2);
        assert!(
            nodes
                .iter()
                .filter(|n| n.task(task).is_some_and(|r| r.running))
                .count()
                == 1
        );
        let mut out = Vec::new();
        nodes[2].exit(task, &mut out).unwrap();
        let done = settle(
            &mut nodes,
            out.into_iter().map(|a| (NodeId(2), a)).collect(),
        );
        for n in [0u8, 1] {
            assert!(done.contains(&(NodeId(n), TaskAction::KillShadow { task })));
            assert!(done.contains(&(NodeId(n), TaskAction::GroupGone { group })));
        }
        assert!(nodes
            .iter()
            .all(|n| n.tasks().is_empty() && n.groups().is_empty()));
    }

    #[test]
    fn last_local_member_saves_the_mm_until_the_group_exits() {
        let mut nodes = cluster(2);
        let group = GroupId {
            origin: NodeId(0),
            tgid: 1,
        };
        let leader = TaskId {
            origin: NodeId(0),
            pid: 1,
        };
        let clone = TaskId {
            origin: NodeId(0),
            pid: 2,
        };
        nodes[0].create_group(group, leader).unwrap();
        let mut out = Vec::new();
        nodes[0].clone_task(clone, group, &mut out).unwrap();
        assert_eq!(out, [TaskAction::CloneReady { task: clone }]);
        let mut out = Vec::new();
        nodes[0].migrate(clone, NodeId(1), &mut out).unwrap();
        settle(
            &mut nodes,
            out.into_iter().map(|a| (NodeId(0), a)).collect(),
        );
        // The clone exits on node 1: last local member there, group alive.
        let mut out = Vec::new();
        nodes[1].exit(clone, &mut out).unwrap();
        let done = settle(
            &mut nodes,
            out.into_iter().map(|a| (NodeId(1), a)).collect(),
        );
        assert!(done.contains(&(NodeId(1), TaskAction::SaveMm { group })));
        assert!(nodes[1].group(group).is_some_and(|g| g.saved_mm));
        // The leader exits: last distributed member, saved mms dropped.
        let mut out = Vec::new();
        nodes[0].exit(leader, &mut out).unwrap();
        let done = settle(
            &mut nodes,
            out.into_iter().map(|a| (NodeId(0), a)).collect(),
        );
        assert!(done.contains(&(NodeId(1), TaskAction::DropSavedMm { group })));
        assert!(!done
            .iter()
            .any(|(n, a)| *n == NodeId(0) && matches!(a, TaskAction::SaveMm { .. })));
        assert!(nodes.iter().all(|n| n.groups().is_empty()));
    }

    #[test]
    fn unexpected_messages_are_errors() {
        let mut nodes = cluster(2);
        let group = GroupId {
            origin: NodeId(0),
            tgid: 1,
        };
        let task = TaskId {
            origin: NodeId(1),
            pid: 5,
        };
        let mut out = Vec::new();
        let n = &mut nodes[0];
        assert_eq!(
            n.on_message(NodeId(1), TaskMsg::TaskExit { task }, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(
                NodeId(1),
                TaskMsg::MemberExit {
                    group,
                    visited: NodeSet::EMPTY
                },
                &mut out
            ),
            Err(Error::Protocol)
        );
        let migrate = TaskMsg::Migrate {
            task,
            group,
            visited: NodeSet::single(NodeId(1)),
        };
        assert_eq!(
            n.on_message(NodeId(1), migrate, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(NodeId(0), TaskMsg::GroupExit { group }, &mut out),
            Err(Error::Protocol)
        );
        assert!(out.is_empty() && n.tasks().is_empty() && n.groups().is_empty());
    }
}
