/** The toolkit: error kinds shared by every package, versions for provenance. */
package dev.finetune;
