/** What finetune inspect reports: every tensor's fate, totals, and the backward frontier with the activation memory it saves. */
package dev.finetune.inspect;
