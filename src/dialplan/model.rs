//! The compiled dialplan: what the call machine runs.
//!
//! Produced by validation from the raw TOML (see `docs/dialplan.md`); every
//! reference in here has been checked, so the call machine never meets an
//! unknown menu or an empty option.
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Dialplan {
    /// Name used to select it (file stem, e.g. `hotline`).
    pub name: String,
    pub source: PathBuf,
    /// Content hash of the source, recorded with every call.
    pub version: String,
    pub start_menu: String,
    /// The language callers speak (`language`, English by default): the
    /// recogniser decodes every utterance of the call in it.
    pub language: crate::asr::Language,
    /// Where callers go when they ask for a human or retries run out.
    pub operator: Transfer,
    pub thresholds: Thresholds,
    pub menus: BTreeMap<String, Menu>,
    /// agent / repeat / back / main menu / goodbye, active in every menu
    /// whose `globals` flag is on.
    pub globals: Vec<GlobalIntent>,
    /// Messages the machine itself speaks (confirmations, apologies).
    pub messages: Messages,
}

/// Intent-matching confidence levels: act at or above `accept`; ask
/// "did you mean …?" between `confirm` and `accept`; below, no match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub accept: f32,
    pub confirm: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    pub id: String,
    pub prompt: Prompt,
    /// Said after a no-input timeout (lists the options).
    pub no_input_prompt: Prompt,
    /// Said after an utterance that matched nothing (lists the options).
    pub no_match_prompt: Prompt,
    pub barge_in: bool,
    pub no_input_timeout_ms: u64,
    /// Silence after words the call cannot act on yet before it answers
    /// them; speech before then is heard together with them (0: answer at
    /// the end of the utterance).
    pub incomplete_timeout_ms: u64,
    /// Retries before escalation.
    pub max_no_input: u32,
    pub max_no_match: u32,
    /// What happens when retries run out (default: transfer to the operator).
    pub escalation: Action,
    pub options: Vec<MenuOption>,
    pub globals: bool,
    /// A caller may say an option's key instead of pressing it ("three"
    /// for "press 3"), as the whole answer.
    pub spoken_keys: bool,
}

/// Something the caller hears: TTS text, a WAV file, or both (the file wins
/// when it exists; the text is the fallback and the transcript).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prompt {
    pub text: String,
    pub wav: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MenuOption {
    pub intent: String,
    pub phrases: Vec<String>,
    pub dtmf: Option<char>,
    pub action: Action,
    /// Details the caller gives with the choice (size, quantity, ...).
    pub slots: OptionSlots,
}

/// The slots an option takes, and whether the whole request is read back
/// before the action ("A large latte, right?").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionSlots {
    /// In the order the caller is asked for the missing ones.
    pub uses: Vec<SlotUse>,
    /// Read the request back once all required slots are filled.
    pub confirm: bool,
    /// What the read-back says, with `{slot}` / `{option}` placeholders;
    /// `None`: the filled values' phrases, then the option's name.
    pub read_back: Option<String>,
}

impl OptionSlots {
    pub fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }
}

/// One slot of an option: required ones are asked for when the caller did
/// not say them; optional ones are only taken from what the caller said.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotUse {
    pub slot: Slot,
    pub required: bool,
}

/// A detail declared once under `[slots.NAME]` and reused by options.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Also the name of the variable its value travels under.
    pub name: String,
    pub kind: SlotKind,
    /// The question that asks for it; `{option}` and `{slot}` placeholders
    /// are filled in the call.
    pub prompt: Prompt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SlotKind {
    /// One of these values (keys 1-9 in the order written).
    Choice(Vec<SlotChoice>),
    /// A digit string, e.g. a PIN or an order number.
    Digits { min: usize, max: usize },
    /// A quantity ("two", "12"), stored as digits.
    Number,
    /// `yes` or `no`.
    YesNo,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Goto(String),
    Transfer(Transfer),
    Collect(Collect),
    Say { message: Prompt, then: AfterSay },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub extension: String,
    pub context: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    /// Variable name (passed along on transfer, shown in the call record).
    pub variable: String,
    pub prompt: Prompt,
    pub min_digits: usize,
    pub max_digits: usize,
    /// When not empty the step takes one of these values instead of digits
    /// (and `min_digits` / `max_digits` do not apply).
    pub choices: Vec<SlotChoice>,
    /// Read the answer back and ask yes/no before going on. (A choice is
    /// also read back whenever the recogniser is only fairly sure of it.)
    pub confirm: bool,
    /// What happens once the answer is confirmed.
    pub then: Box<Action>,
}

impl Collect {
    /// The step takes one of its `choices`, not digits.
    pub fn takes_choice(&self) -> bool {
        !self.choices.is_empty()
    }
}

/// One value a choice step can take: what is stored, what callers say for
/// it, and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotChoice {
    pub value: String,
    pub phrases: Vec<String>,
    pub dtmf: Option<char>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AfterSay {
    Hangup,
    /// Back to the menu the option was chosen in.
    Return,
    Goto(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalKind {
    Operator,
    Repeat,
    Back,
    MainMenu,
    Goodbye,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalIntent {
    pub kind: GlobalKind,
    /// Intent name as it appears in timelines (`agent`, `repeat`, ...).
    pub intent: String,
    pub phrases: Vec<String>,
    pub dtmf: Option<char>,
}

/// Texts of the machine's own turns; `{}` placeholders as documented.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    /// "Did you mean {}?"
    pub confirm_intent: String,
    /// "I heard {}. Is that right?"
    pub confirm_digits: String,
    /// "Sorry, speech recognition is not available. Please use your keypad."
    pub dtmf_only: String,
    /// "Please hold while I transfer you."
    pub transferring: String,
    /// "Sorry, the transfer failed."
    pub transfer_failed: String,
    /// "Goodbye."
    pub goodbye: String,
    /// "{}, right?": the read-back of an option with its slots.
    pub confirm_request: String,
}

/// One place in a dialplan that can send a caller to a human: which
/// option (as the TOML path names it) and where to.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferUse {
    /// `operator`, `menus.main.escalation`, `menus.main.options.pay_bill`, ...
    pub option: String,
    pub target: Transfer,
}

impl Dialplan {
    /// Every transfer target of the dialplan, where it is named, in file
    /// order of menus (the operator first). A target named twice is listed
    /// twice, so a problem can be reported at each place.
    pub fn transfer_uses(&self) -> Vec<TransferUse> {
        let mut uses = vec![TransferUse { option: "operator".into(), target: self.operator.clone() }];
        for (id, menu) in &self.menus {
            // A menu without its own escalation goes to the operator, listed above.
            if menu.escalation != Action::Transfer(self.operator.clone()) {
                push_transfers(&mut uses, format!("menus.{id}.escalation"), &menu.escalation);
            }
            for option in &menu.options {
                push_transfers(&mut uses, format!("menus.{id}.options.{}", option.intent), &option.action);
            }
        }
        uses
    }
}

fn push_transfers(uses: &mut Vec<TransferUse>, option: String, action: &Action) {
    match action {
        Action::Transfer(t) => uses.push(TransferUse { option, target: t.clone() }),
        // The `transfer` key sits on the option, beside its `collect`.
        Action::Collect(c) => push_transfers(uses, option, &c.then),
        Action::Goto(_) | Action::Say { .. } => {}
    }
}
