"""Reports: /report (message, XLSX, chart), /export (printable work log), the Monday push."""
