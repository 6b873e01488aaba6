//! Where the call goes: menus, actions, globals, retries and escalation,
//! degradation to keys.
use std::sync::Arc;

use super::*;

impl Call {
    pub(super) fn current_menu_def(&self) -> Option<&Menu> {
        self.plan.menus.get(&self.menu)
    }

    pub(super) fn enter_menu(&mut self, now: u64, id: &str, remember: bool, out: &mut Vec<Output>) {
        let plan = Arc::clone(&self.plan);
        let Some(menu) = plan.menus.get(id) else {
            tracing::error!(menu = id, "dialplan names a menu that does not exist; transferring to the operator");
            self.transfer(now, plan.operator.clone(), out);
            return;
        };
        if remember && id != self.menu {
            if self.history.len() >= HISTORY_LIMIT {
                self.history.remove(0);
            }
            self.history.push(std::mem::replace(&mut self.menu, id.to_string()));
        } else {
            self.menu = id.to_string();
        }
        self.state = State::Menu;
        self.filling = None;
        self.reset_counters();
        self.play_menu_prompt(now, menu, &menu.prompt, out);
    }

    pub(super) fn reset_counters(&mut self) {
        self.no_input = 0;
        self.no_match = 0;
        self.last_result_empty = false;
    }

    /// Plays a menu prompt, or its keys-only version when speech is off.
    pub(super) fn play_menu_prompt(&mut self, now: u64, menu: &Menu, prompt: &Prompt, out: &mut Vec<Output>) {
        if self.degraded {
            match wording::keys_only_menu(menu, &self.plan.globals) {
                Some(keys) => self.play(now, keys, true, out),
                None => {
                    let operator = self.plan.operator.clone();
                    self.transfer(now, operator, out);
                }
            }
        } else {
            self.play(now, prompt.clone(), menu.barge_in, out);
        }
    }

    /// Plays a collect step's question. When speech is off, a choice step
    /// is offered as keys ("For internet, press 1. …"), or handed to the
    /// operator when its values have no keys; digits can always be keyed.
    pub(super) fn play_collect_prompt(&mut self, now: u64, collect: &Collect, out: &mut Vec<Output>) {
        let barge_in = self.barge_in_here();
        if !(self.degraded && collect.takes_choice()) {
            return self.play(now, collect.prompt.clone(), barge_in, out);
        }
        let globals = if self.globals_active() { self.plan.globals.as_slice() } else { &[] };
        match wording::keys_only_choices(collect, globals) {
            Some(keys) => self.play(now, keys, true, out),
            None => {
                let operator = self.plan.operator.clone();
                self.transfer(now, operator, out);
            }
        }
    }

    pub(super) fn barge_in_here(&self) -> bool {
        self.current_menu_def().is_none_or(|m| m.barge_in)
    }

    pub(super) fn act(&mut self, now: u64, chosen: Chosen, source: Source, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::Intent {
            t_ms: now,
            menu: self.menu.clone(),
            intent: chosen.intent.clone(),
            confidence: chosen.confidence,
            source,
        }));
        let Target::Action(action) = chosen.target else {
            let Target::Global(kind) = chosen.target else { return };
            return self.run_global(now, kind, out);
        };
        // The receiving side learns what the caller chose, not only the
        // values collected for it.
        self.set_variable(OPTION_VARIABLE, chosen.intent.clone());
        let option = self.current_option(&chosen.intent).cloned();
        match option.filter(|o| !o.slots.is_empty()) {
            Some(option) => {
                let by_voice = source == Source::Speech;
                let heard = if by_voice { std::mem::take(&mut self.heard) } else { String::new() };
                let unsure = chosen.confidence < self.plan.thresholds.accept;
                self.start_request(now, &option, &heard, by_voice && self.heard_is_sentence, unsure, out)
            }
            None => self.run_action(now, action, out),
        }
    }

    /// Sets a variable that travels with a transfer, replacing its value.
    pub(super) fn set_variable(&mut self, name: &str, value: String) {
        self.variables.retain(|(n, _)| n != name);
        self.variables.push((name.to_string(), value));
    }

    /// The caller said yes (or pressed 1) to the read-back of a request.
    pub(super) fn request_confirmed(&mut self, now: u64, out: &mut Vec<Output>) {
        self.finish_request(now, true, out);
    }

    pub(super) fn run_action(&mut self, now: u64, action: Action, out: &mut Vec<Output>) {
        match action {
            Action::Goto(menu) => self.enter_menu(now, &menu, true, out),
            Action::Transfer(target) => self.transfer(now, target, out),
            Action::Collect(collect) => {
                self.reset_counters();
                self.state = State::Collect { collect: collect.clone(), digits: String::new() };
                self.play_collect_prompt(now, &collect, out);
            }
            Action::Say { message, then } => {
                self.state = State::Saying(then);
                self.play(now, message, false, out);
            }
        }
    }

    pub(super) fn transfer(&mut self, now: u64, target: Transfer, out: &mut Vec<Output>) {
        self.state = State::Transferring(target);
        self.filling = None;
        self.pending = None;
        let announcement = wording::text_prompt(&self.plan.messages.transferring);
        self.play(now, announcement, false, out);
    }

    pub(super) fn run_global(&mut self, now: u64, kind: GlobalKind, out: &mut Vec<Output>) {
        match kind {
            GlobalKind::Operator => {
                let operator = self.plan.operator.clone();
                self.transfer(now, operator, out);
            }
            GlobalKind::Repeat => self.replay_question(now, out),
            GlobalKind::Back => {
                let previous = self.history.pop().unwrap_or_else(|| self.menu.clone());
                self.enter_menu(now, &previous, false, out);
            }
            GlobalKind::MainMenu => {
                let start = self.plan.start_menu.clone();
                self.enter_menu(now, &start, true, out);
            }
            GlobalKind::Goodbye => {
                let goodbye = wording::text_prompt(&self.plan.messages.goodbye);
                self.play(now, goodbye, false, out);
                self.state = State::HangingUp("caller said goodbye".into());
            }
        }
    }

    /// Plays again what the caller is being asked right now.
    pub(super) fn replay_question(&mut self, now: u64, out: &mut Vec<Output>) {
        let plan = Arc::clone(&self.plan);
        let barge_in = self.barge_in_here();
        match self.state.clone() {
            State::Menu => {
                if let Some(menu) = plan.menus.get(&self.menu) {
                    self.play_menu_prompt(now, menu, &menu.prompt, out);
                }
            }
            State::ConfirmIntent(chosen) => {
                let q = wording::confirm_intent_prompt(&plan.messages, &chosen.intent, self.degraded);
                self.play(now, q, barge_in, out);
            }
            State::ConfirmRequest => self.play_read_back(now, out),
            State::Collect { collect, .. } => {
                self.state = State::Collect { digits: String::new(), collect: collect.clone() };
                self.play_collect_prompt(now, &collect, out);
            }
            State::ConfirmValue { collect, value } => {
                let q = wording::read_back_prompt(&plan.messages, &collect, &value, self.degraded);
                self.play(now, q, barge_in, out);
            }
            _ => {}
        }
    }

    pub(super) fn hang_up(&mut self, now: u64, reason: String, out: &mut Vec<Output>) {
        self.finish();
        out.push(Output::Event(Event::Hangup { t_ms: now, reason: reason.clone() }));
        out.push(Output::Hangup { reason });
    }

    pub(super) fn finish(&mut self) {
        self.state = State::Ended;
        self.timer = None;
        self.queue.clear();
        self.pending = None;
    }

    // ----- retries ------------------------------------------------------

    pub(super) fn no_input_event(&mut self, now: u64, out: &mut Vec<Output>) {
        if !self.state.listening() {
            return;
        }
        out.push(Output::Event(Event::NoInput { t_ms: now, menu: self.menu.clone() }));
        self.no_input += 1;
        let Some(menu) = self.plan.menus.get(&self.menu).cloned() else { return self.escalate(now, out) };
        if self.no_input > menu.max_no_input {
            return self.escalate(now, out);
        }
        match self.state {
            State::Menu => self.play_menu_prompt(now, &menu, &menu.no_input_prompt, out),
            State::Collect { .. } => {
                // A half-typed entry that timed out is a no-match, handled
                // by the inter-digit timer; here nothing was entered.
                self.replay_question(now, out)
            }
            _ => self.replay_question(now, out),
        }
    }

    pub(super) fn no_match_event(&mut self, now: u64, text: String, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::NoMatch { t_ms: now, menu: self.menu.clone(), text }));
        self.no_match += 1;
        let Some(menu) = self.plan.menus.get(&self.menu).cloned() else { return self.escalate(now, out) };
        if self.no_match > menu.max_no_match {
            return self.escalate(now, out);
        }
        match self.state.clone() {
            State::Menu | State::ConfirmIntent(_) | State::ConfirmRequest => {
                self.state = State::Menu;
                self.filling = None;
                self.play_menu_prompt(now, &menu, &menu.no_match_prompt, out);
            }
            State::Collect { collect, .. } | State::ConfirmValue { collect, .. } => {
                self.state = State::Collect { collect, digits: String::new() };
                self.replay_question(now, out);
            }
            _ => {}
        }
    }

    pub(super) fn escalate(&mut self, now: u64, out: &mut Vec<Output>) {
        self.escalations += 1;
        self.filling = None;
        let escalation = self.plan.menus.get(&self.menu).map(|m| m.escalation.clone());
        match escalation {
            Some(action) if !self.degraded && self.escalations <= MAX_ESCALATIONS => {
                self.state = State::Menu;
                self.run_action(now, action, out)
            }
            _ => {
                let operator = self.plan.operator.clone();
                self.transfer(now, operator, out);
            }
        }
    }

    /// Speech is off for the rest of the call: tell the caller and offer the
    /// current question as keys.
    pub(super) fn degrade(&mut self, now: u64, reason: String, out: &mut Vec<Output>) {
        self.degraded = true;
        out.push(Output::Event(Event::Degraded { t_ms: now, reason }));
        self.offer_keys(now, out);
    }

    /// Drops the answer in flight, says speech is not available, and asks
    /// the question again (as keys while `degraded` is set).
    pub(super) fn offer_keys(&mut self, now: u64, out: &mut Vec<Output>) {
        self.pending = None;
        self.held = None;
        self.voice = Voice::Quiet;
        if !self.state.listening() {
            return; // an announcement is under way; its follow-up is keys-safe
        }
        if let State::ConfirmIntent(_) = self.state {
            self.state = State::Menu;
        }
        let notice = wording::text_prompt(&self.plan.messages.dtmf_only);
        self.play(now, notice, true, out);
        self.replay_question(now, out);
    }
}
