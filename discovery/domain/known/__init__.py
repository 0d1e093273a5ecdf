"""Known materials: phases already reported by a database (Materials Project, Alexandria), a
local file of entries, a folder of structures, or the set shipped with the package. They are
what a candidate's stability and novelty are judged against."""
