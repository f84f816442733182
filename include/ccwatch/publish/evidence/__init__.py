"""The dated evidence folder and its archive: ``write`` orchestrates, ``folder`` writes the files
in one pass, ``contents`` chooses what each change folder holds, ``reader`` reads the raw records,
``archive`` / ``tarstream`` / ``jsonfast`` make the bytes reproducible, ``verify`` checks them,
``retention`` prunes old archives."""
