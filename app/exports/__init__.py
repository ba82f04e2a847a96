"""Exports people file and print: a case (工单) as PDF/DOCX, a transcript as DOCX/PDF/SRT/TXT."""
