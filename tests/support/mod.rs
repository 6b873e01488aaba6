pub mod audiosocket;
pub mod freeswitch;
pub mod twilio;
