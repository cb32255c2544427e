"""One module per family of label-table formats; ``ral.data.formats`` holds the table of formats."""
