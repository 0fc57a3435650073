// Package dispatch decides who handles a report and when: the assignment
// policy (coordination tier, departments, deadlines), the seven-step
// workflow state machine and the SLA clocks with their holiday calendar.
// It is pure logic over the domain types: no SQL, no HTTP.
package dispatch
